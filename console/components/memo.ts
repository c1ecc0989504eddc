import { Component, type ComponentChild } from 'preact'

/**
 * A component redrawn only when one of its props is a different object or value (what
 * preact/compat's memo does, without compat's React emulation, which would also turn
 * onChange into onInput). For hook-free rows of long lists.
 */
export function memo<P extends object>(render: (props: P) => ComponentChild) {
  return class Memo extends Component<P> {
    override shouldComponentUpdate(next: P): boolean {
      const keys = new Set([...Object.keys(next), ...Object.keys(this.props)]) as Set<keyof P>
      for (const key of keys) if (next[key] !== this.props[key]) return true
      return false
    }

    override render(props: P): ComponentChild {
      return render(props)
    }
  }
}
