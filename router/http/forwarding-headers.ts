import { BlockList, isIPv6 } from 'node:net'
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http'
import { TRACE_HEADERS } from '../../telemetry/tracing.js'

/** Headers that describe one connection, not the message (RFC 9110 7.6.1), plus proxy credentials. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade'])

/**
 * Request headers the router answers itself: Node's server already sent the client its
 * `100 Continue`, so the upstream gets the body without being asked (undici refuses
 * to send `Expect` at all).
 */
const ANSWERED_HERE = 'expect'

/** Headers the router sets itself; what a client sends under these names is dropped. */
const ROUTER_OWNED = new Set([
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'forwarded',
  'x-request-id',
  'x-switchyard-version',
  'x-switchyard-service',
  'x-switchyard-route'
])

export function buildBlockList(cidrs: readonly string[]): BlockList {
  const list = new BlockList()
  for (const cidr of cidrs) {
    const [address, bits] = cidr.split('/') as [string, string | undefined]
    const type = isIPv6(address) ? 'ipv6' : 'ipv4'
    if (bits === undefined) list.addAddress(address, type)
    else list.addSubnet(address, Number(bits), type)
  }
  return list
}

export function addressMatches(list: BlockList, address: string | undefined): boolean {
  if (!address) return false
  // IPv4 clients of a dual-stack socket show up as ::ffff:a.b.c.d
  const plain = address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address
  return list.check(plain, isIPv6(plain) ? 'ipv6' : 'ipv4')
}

const COMMON_CONNECTION = /^\s*(?:keep-alive|close)\s*$/i

/** Names listed in a Connection header are hop-by-hop too. */
function connectionListed(value: string | undefined): Set<string> | undefined {
  // The usual values name nothing beyond the hop-by-hop headers already dropped.
  if (!value || COMMON_CONNECTION.test(value)) return undefined
  const names = new Set<string>()
  for (const name of value.split(',')) names.add(name.trim().toLowerCase())
  return names
}

export interface ForwardingContext {
  clientAddress: string | undefined
  /** keep the client's x-forwarded-* chain (it came through a proxy we trust) */
  trustForwarded: boolean
  /** the host the request is for: its Host header, or the authority of an absolute-form target */
  host: string | undefined
  requestId: string
  service: string
  version: string
  /** a header only the edge may see, never the upstream (the forced-version secret) */
  secretHeader: string | undefined
  /** the router writes its own trace context: the client's trace headers (any format) are dropped */
  replaceTraceHeaders: boolean
  /** the client's connection to the router: 'https' on the TLS listener */
  proto: 'http' | 'https'
}

/** The headers an upstream sees: end-to-end headers of the client plus the router's own. */
export function upstreamHeaders(incoming: IncomingHttpHeaders, context: ForwardingContext): Record<string, string | string[]> {
  const listed = connectionListed(incoming.connection)
  const out: Record<string, string | string[]> = {}
  for (const name in incoming) {
    const value = incoming[name]
    if (value === undefined || HOP_BY_HOP.has(name) || ROUTER_OWNED.has(name) || name === ANSWERED_HERE || name === context.secretHeader || listed?.has(name)) continue
    if (context.replaceTraceHeaders && TRACE_HEADERS.has(name)) continue
    out[name] = value
  }
  const client = context.clientAddress ?? 'unknown'
  const priorFor = context.trustForwarded ? incoming['x-forwarded-for'] : undefined
  out['x-forwarded-for'] = priorFor ? `${priorFor}, ${client}` : client
  out['x-forwarded-proto'] = (context.trustForwarded && firstValue(incoming['x-forwarded-proto'])) || context.proto
  // An absolute-form target's authority replaces the Host header (RFC 9112 7.2).
  if (context.host !== undefined && context.host !== incoming.host) out.host = context.host
  const host = (context.trustForwarded && firstValue(incoming['x-forwarded-host'])) || context.host
  if (host) out['x-forwarded-host'] = host
  out['x-request-id'] = context.requestId
  out['x-switchyard-service'] = context.service
  out['x-switchyard-version'] = context.version
  return out
}

/**
 * The headers a client sees from an upstream answer, as the flat [name, value, ...] list
 * `writeHead` takes, built straight from undici's raw header bytes: hop-by-hop headers
 * and the router's own (sent by the router, whatever the upstream said) are left out.
 */
export function downstreamHeaderList(raw: readonly Buffer[], requestId: string, version: string): string[] {
  const out: string[] = []
  let listed: Set<string> | undefined
  for (let index = 0; index < raw.length; index += 2) {
    const name = (raw[index] as Buffer).toString('latin1').toLowerCase()
    const value = (raw[index + 1] as Buffer).toString('latin1')
    if (name === 'connection') listed = connectionListed(value)
    if (HOP_BY_HOP.has(name) || name === 'x-request-id' || name === 'x-switchyard-version') continue
    out.push(name, value)
  }
  if (listed) {
    for (let index = out.length - 2; index >= 0; index -= 2) if (listed.has(out[index] as string)) out.splice(index, 2)
  }
  out.push('x-request-id', requestId, 'x-switchyard-version', version)
  return out
}

/**
 * The same list from an HTTP/2 upstream's head (Node's headers object): pseudo-headers
 * (`:status`) and connection-specific headers are left out, repeated ones kept.
 */
export function h2DownstreamHeaderList(headers: IncomingHttpHeaders, requestId: string, version: string): string[] {
  const out: string[] = []
  for (const name in headers) {
    if (name.charCodeAt(0) === COLON || HOP_BY_HOP.has(name) || name === 'x-request-id' || name === 'x-switchyard-version') continue
    const value = headers[name] as string | string[]
    if (typeof value === 'string') out.push(name, value)
    else for (const each of value) out.push(name, each)
  }
  out.push('x-request-id', requestId, 'x-switchyard-version', version)
  return out
}

/** An upstream's trailers as the client gets them (gRPC's grpc-status and grpc-message among them): connection-specific ones dropped. */
export function forwardedTrailers(trailers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {}
  for (const name in trailers) {
    if (name.charCodeAt(0) === COLON || HOP_BY_HOP.has(name)) continue
    out[name] = trailers[name]
  }
  return out
}

const COLON = 0x3a

function firstValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value
}

const REQUEST_ID = /^[\x21-\x7e]{1,200}$/

/** A client's x-request-id is passed on when it is sane; otherwise the edge makes one. */
export function acceptableRequestId(value: string | string[] | undefined): string | undefined {
  return typeof value === 'string' && REQUEST_ID.test(value) ? value : undefined
}
