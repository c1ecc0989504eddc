/**
 * The request target as the router routes and forwards it. Rules match, and upstreams
 * receive, one canonical path, so a path trick (`/api/../admin`, `/api/%2e%2e/admin`,
 * `//admin`, `\admin`) cannot reach a rule other than the one the path really names.
 *
 * - absolute-form (`GET http://host/x`, RFC 9112 3.2.2) becomes origin-form (`/x`), and its
 *   authority replaces the Host header (RFC 9112 3.2.2 and 7.2);
 * - `normalize` (RFC 3986 6.2.2): percent-encoded unreserved characters are decoded
 *   (`%2e` and `%2E` are dots, `%7E` a tilde; other escapes are kept as sent, case too),
 *   a backslash is a slash (as in Envoy and browsers: some servers read it so), and
 *   dot-segments are removed (RFC 3986 5.2.4). `..` above the root stays at the root
 *   (`/../a` -> `/a`), as RFC 3986 and Envoy do;
 * - `mergeSlashes`: a run of slashes is one slash; it applies before dot-segments, so
 *   `/a//..` is `/`;
 * - `escapedSlashes`: `%2F` and `%5C` are data within a segment and `keep` forwards them
 *   untouched (Envoy's default); `reject` refuses them; `unescape` turns them into
 *   separators before normalising;
 * - refused (400 INVALID_PATH): invalid percent-encoding, `%00`, a fragment (`#`),
 *   asterisk-form, an absolute-form target that is not http(s), carries userinfo or has no
 *   host. A raw NUL or control character never gets here: Node's parser refuses it.
 *
 * The query string is never touched. A path with nothing to change is returned as is,
 * without allocating.
 */

export interface PathOptions {
  readonly normalize: boolean
  readonly mergeSlashes: boolean
  readonly escapedSlashes: 'keep' | 'reject' | 'unescape'
}

/** Why a target is not routed; the message goes to the client with 400 INVALID_PATH. */
export interface TargetRefusal {
  readonly refused: string
}

/** An absolute-form target taken apart: the authority stands in for Host, the rest is the origin-form target. */
export interface AbsoluteForm {
  readonly authority: string
  readonly target: string
}

const refusal = (refused: string): TargetRefusal => ({ refused })
const FRAGMENT = refusal('a request target cannot carry a fragment (#)')
const BAD_ESCAPE = refusal('the path has a "%" that is not followed by two hex digits')
const ENCODED_NUL = refusal('the path has an encoded NUL (%00)')
const ESCAPED_SLASH = refusal('the path has an encoded slash (%2F or %5C)')
const ASTERISK = refusal('asterisk-form (OPTIONS *) is not routed')
const NOT_HTTP = refusal('the request target is neither a path nor an http(s) URI')
const USERINFO = refusal('an absolute-form target cannot carry userinfo (user@host)')
const BAD_AUTHORITY = refusal('an absolute-form target must name a valid host')

const SLASH = 0x2f
const BACKSLASH = 0x5c
const DOT = 0x2e
const PERCENT = 0x25
const QUESTION = 0x3f
const HASH = 0x23

const ABSOLUTE_FORM = /^https?:\/\/([^/?#]*)(.*)$/i
/** reg-name or IP literal (RFC 3986 3.2.2), then an optional port */
const AUTHORITY = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~!$&'()*+,;=%-]+)(?::[0-9]*)?$/

/** Takes an absolute-form target apart (the caller sends anything not starting with `/` here). */
export function absoluteForm(target: string): AbsoluteForm | TargetRefusal {
  if (target === '*') return ASTERISK
  const parts = ABSOLUTE_FORM.exec(target)
  if (!parts) return NOT_HTTP
  const authority = parts[1] as string
  const rest = parts[2] as string
  if (authority.includes('@')) return USERINFO
  if (!AUTHORITY.test(authority)) return BAD_AUTHORITY
  return { authority, target: rest.charCodeAt(0) === SLASH ? rest : `/${rest}` }
}

/**
 * The origin-form target (starting with `/`) with its path normalised as `options` say,
 * or why it cannot be. The same string when nothing changes.
 */
export function normalizePath(target: string, options: PathOptions): string | TargetRefusal {
  const { normalize, mergeSlashes } = options
  if (!normalize && !mergeSlashes) return target.includes('#') ? FRAGMENT : target
  let dirty = false
  let previous = 0
  const length = target.length
  for (let index = 0; index < length; index++) {
    const code = target.charCodeAt(index)
    if (code === QUESTION) {
      if (target.includes('#', index)) return FRAGMENT
      return dirty ? rewrite(target, index, options) : target
    }
    if (code === HASH) return FRAGMENT
    if (code === SLASH) {
      if (mergeSlashes && previous === SLASH) dirty = true
    } else if (normalize) {
      if (code === BACKSLASH) dirty = true
      else if (code === DOT) {
        if (previous === SLASH && isDotSegment(target, index)) dirty = true
      } else if (code === PERCENT) {
        const byte = escapedByte(target, index)
        if (byte < 0) return BAD_ESCAPE
        if (byte === 0) return ENCODED_NUL
        if (byte === SLASH || byte === BACKSLASH) {
          if (options.escapedSlashes === 'reject') return ESCAPED_SLASH
          if (options.escapedSlashes === 'unescape') dirty = true
        } else if (isUnreserved(byte)) dirty = true
        index += 2
      }
    }
    previous = code
  }
  return dirty ? rewrite(target, length, options) : target
}

/** A dot at the start of a segment: is the segment `.` or `..`? */
function isDotSegment(target: string, index: number): boolean {
  let next = target.charCodeAt(index + 1)
  if (next === DOT) next = target.charCodeAt(index + 2)
  return Number.isNaN(next) || next === SLASH || next === BACKSLASH || next === QUESTION
}

function hexValue(code: number): number {
  if (code >= 0x30 && code <= 0x39) return code - 0x30
  if (code >= 0x41 && code <= 0x46) return code - 0x37
  if (code >= 0x61 && code <= 0x66) return code - 0x57
  return -1
}

/** The byte of the escape at `index` (`%XX`), or -1 when it is not one. */
function escapedByte(text: string, index: number): number {
  const high = hexValue(text.charCodeAt(index + 1))
  const low = hexValue(text.charCodeAt(index + 2))
  return high < 0 || low < 0 ? -1 : high * 16 + low
}

/** ALPHA / DIGIT / "-" / "." / "_" / "~" (RFC 3986 2.3) */
function isUnreserved(byte: number): boolean {
  return (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a) || (byte >= 0x30 && byte <= 0x39) || byte === 0x2d || byte === 0x2e || byte === 0x5f || byte === 0x7e
}

/** The slow path, for a path known to change (escapes already checked). */
function rewrite(target: string, pathEnd: number, options: PathOptions): string {
  const path = options.normalize ? decode(target.slice(0, pathEnd), options.escapedSlashes === 'unescape') : target.slice(0, pathEnd)
  const segments = path.split('/')
  const kept: string[] = []
  // segments[0] is the empty string before the leading slash
  for (let index = 1; index < segments.length; index++) {
    const segment = segments[index] as string
    const last = index === segments.length - 1
    if (options.normalize && (segment === '.' || segment === '..')) {
      if (segment === '..') kept.pop()
      // `/a/.` and `/a/b/..` name a directory: the trailing slash stays
      if (last) kept.push('')
    } else if (segment !== '' || last || !options.mergeSlashes) {
      kept.push(segment)
    }
  }
  return `/${kept.join('/')}${target.slice(pathEnd)}`
}

/** Backslashes and escaped unreserved characters (and escaped slashes, when unescaping) as plain characters. */
function decode(path: string, unescapeSlashes: boolean): string {
  let out = ''
  let copied = 0
  for (let index = 0; index < path.length; index++) {
    const code = path.charCodeAt(index)
    let replacement: string | undefined
    let width = 1
    if (code === BACKSLASH) replacement = '/'
    else if (code === PERCENT) {
      width = 3
      const byte = escapedByte(path, index)
      if (isUnreserved(byte)) replacement = String.fromCharCode(byte)
      else if (unescapeSlashes && (byte === SLASH || byte === BACKSLASH)) replacement = '/'
    }
    if (replacement !== undefined) {
      out += path.slice(copied, index) + replacement
      copied = index + width
    }
    index += width - 1
  }
  return out + path.slice(copied)
}

/**
 * RFC 9112 3.2: a request with more than one Host line is refused, since which host it is
 * for is ambiguous (Node keeps the first and drops the others unseen).
 */
export function hasOneHostAtMost(rawHeaders: readonly string[]): boolean {
  let seen = false
  for (let index = 0; index < rawHeaders.length; index += 2) {
    if (!isHost(rawHeaders[index] as string)) continue
    if (seen) return false
    seen = true
  }
  return true
}

/** "host" in any case, without allocating a lower-case copy. (Setting 0x20 maps only H and h to h, and so on.) */
function isHost(name: string): boolean {
  return (
    name.length === 4 &&
    (name.charCodeAt(0) | 0x20) === 0x68 &&
    (name.charCodeAt(1) | 0x20) === 0x6f &&
    (name.charCodeAt(2) | 0x20) === 0x73 &&
    (name.charCodeAt(3) | 0x20) === 0x74
  )
}
