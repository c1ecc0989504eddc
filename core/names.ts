import { SwitchyardError } from './errors.js'

/** Service and version names: what DNS labels, queue names and metric labels all accept. */
export const NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'
/** Instance ids may also carry ':' so that `host:port` works as an id. */
export const INSTANCE_ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$'

const nameRegExp = new RegExp(NAME_PATTERN)
const instanceIdRegExp = new RegExp(INSTANCE_ID_PATTERN)

export function isValidName(name: string): boolean {
  return nameRegExp.test(name)
}

export function isValidInstanceId(id: string): boolean {
  return instanceIdRegExp.test(id)
}

export function assertValidName(kind: 'service' | 'version', name: string): void {
  if (!isValidName(name)) {
    throw new SwitchyardError(
      'INVALID_NAME',
      `${kind} name ${JSON.stringify(name.slice(0, 80))} is invalid: use 1-64 characters of letters, digits, '.', '_' or '-', starting with a letter or digit`
    )
  }
}

/**
 * Orders versions the way people read them: v1.9 before v1.10. Both routers lay buckets
 * out in this order, so it must not depend on the ICU build or locale of a process:
 * runs of digits compare as numbers, everything else by UTF-16 code unit.
 */
export function compareVersions(a: string, b: string): number {
  const partsA = a.match(/\d+|\D+/g) ?? []
  const partsB = b.match(/\d+|\D+/g) ?? []
  const length = Math.min(partsA.length, partsB.length)
  for (let i = 0; i < length; i++) {
    const x = partsA[i] as string
    const y = partsB[i] as string
    if (x === y) continue
    const xIsNumber = x.charCodeAt(0) <= 57 && x.charCodeAt(0) >= 48
    const yIsNumber = y.charCodeAt(0) <= 57 && y.charCodeAt(0) >= 48
    if (xIsNumber && yIsNumber) {
      const xs = x.replace(/^0+(?=\d)/, '')
      const ys = y.replace(/^0+(?=\d)/, '')
      if (xs.length !== ys.length) return xs.length - ys.length
      if (xs !== ys) return xs < ys ? -1 : 1
    }
    return x < y ? -1 : 1
  }
  if (partsA.length !== partsB.length) return partsA.length - partsB.length
  // Every part was equal, and the parts spell out the whole string: a and b are equal.
  return 0
}
