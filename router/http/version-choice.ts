import { timingSafeEqual } from 'node:crypto'
import type { IncomingHttpHeaders } from 'node:http'
import type { ServiceRoute, VersionRoute } from '../../core/route-table.js'
import { chooseVersion, choiceReason, type ChoiceReason } from '../../core/version-choice.js'
import type { FallbackListener } from '../../core/version-picker.js'
import type { ProxyConfig } from '../config.js'
import { addressMatches, buildBlockList } from './forwarding-headers.js'

export type VersionChoice<E> = { version: VersionRoute<E>; reason: ChoiceReason } | { error: 'UNKNOWN_VERSION' | 'NO_HEALTHY_INSTANCE'; message: string }

/**
 * The HTTP side of the version choice (core/version-choice.ts): which client may force a
 * version, where the sticky key is read from, and what a refusal says.
 */
export class VersionChooser {
  private readonly forcedAllowed: boolean
  private readonly trustedNetworks
  private readonly secretName: string | undefined
  private readonly secretValue: Buffer | undefined
  private readonly stickyHeader: string | undefined
  private readonly stickyCookie: string | undefined
  private readonly random: () => number
  private readonly strategy: ProxyConfig['weightedChoice']

  constructor(config: Pick<ProxyConfig, 'forcedVersion' | 'stickyKey' | 'weightedChoice'>, random: () => number) {
    this.forcedAllowed = config.forcedVersion.allowed
    this.trustedNetworks = config.forcedVersion.trustedNetworks ? buildBlockList(config.forcedVersion.trustedNetworks) : undefined
    this.secretName = config.forcedVersion.secretHeader?.name.toLowerCase()
    this.secretValue = config.forcedVersion.secretHeader ? Buffer.from(config.forcedVersion.secretHeader.value) : undefined
    this.stickyHeader = config.stickyKey.cookie ? undefined : (config.stickyKey.header ?? 'x-switchyard-key').toLowerCase()
    this.stickyCookie = config.stickyKey.cookie
    this.random = random
    this.strategy = config.weightedChoice
  }

  /** The header that carries the forced-version secret; never forwarded upstream. */
  get secretHeader(): string | undefined {
    return this.secretName
  }

  choose<E>(route: ServiceRoute<E>, headers: IncomingHttpHeaders, clientAddress: string | undefined, onFallback: FallbackListener<E>): VersionChoice<E> {
    const header = headers['x-switchyard-version']
    const forced = typeof header === 'string' && this.mayForce(headers, clientAddress) ? header : undefined
    const key = forced === undefined ? this.stickyKey(headers) : undefined
    const version = chooseVersion(route, forced, key, this.strategy, this.random, onFallback)
    if (forced !== undefined) {
      if (!version) return { error: 'UNKNOWN_VERSION', message: `service ${route.name} has no version ${JSON.stringify(forced.slice(0, 64))}` }
      if (version.endpoints.length === 0) return { error: 'NO_HEALTHY_INSTANCE', message: `version ${version.name} of ${route.name} has no healthy instance` }
    }
    if (!version) return { error: 'NO_HEALTHY_INSTANCE', message: `no version of ${route.name} with weight has a healthy instance` }
    return { version, reason: choiceReason(forced, key) }
  }

  private mayForce(headers: IncomingHttpHeaders, clientAddress: string | undefined): boolean {
    if (!this.forcedAllowed) return false
    if (!this.trustedNetworks && !this.secretValue) return true
    if (this.trustedNetworks && addressMatches(this.trustedNetworks, clientAddress)) return true
    if (this.secretName && this.secretValue) {
      const presented = headers[this.secretName]
      if (typeof presented === 'string') {
        const bytes = Buffer.from(presented)
        return bytes.length === this.secretValue.length && timingSafeEqual(bytes, this.secretValue)
      }
    }
    return false
  }

  private stickyKey(headers: IncomingHttpHeaders): string | undefined {
    if (this.stickyHeader) {
      const value = headers[this.stickyHeader]
      return typeof value === 'string' && value !== '' ? value : undefined
    }
    const cookies = headers.cookie
    if (!cookies || !this.stickyCookie) return undefined
    for (const part of cookies.split(';')) {
      const eq = part.indexOf('=')
      if (eq > 0 && part.slice(0, eq).trim() === this.stickyCookie) {
        const value = part.slice(eq + 1).trim()
        return value === '' ? undefined : value
      }
    }
    return undefined
  }
}
