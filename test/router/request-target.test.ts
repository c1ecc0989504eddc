import t from 'tap'
import { absoluteForm, hasOneHostAtMost, normalizePath, type PathOptions } from '../../router/http/request-target.js'

const defaults: PathOptions = { normalize: true, mergeSlashes: true, escapedSlashes: 'keep' }
const refused = (message: string) => ({ refused: message })
const BAD_ESCAPE = refused('the path has a "%" that is not followed by two hex digits')
const ENCODED_NUL = refused('the path has an encoded NUL (%00)')
const ESCAPED_SLASH = refused('the path has an encoded slash (%2F or %5C)')
const FRAGMENT = refused('a request target cannot carry a fragment (#)')

void t.test('paths with the default options (normalize, merge slashes, keep escaped slashes)', (t) => {
  const cases: [target: string, expected: string | { refused: string }][] = [
    // unchanged
    ['/', '/'],
    ['/api/x', '/api/x'],
    ['/api/x/', '/api/x/'],
    ['/static/app.min.js', '/static/app.min.js'],
    ['/.well-known/x', '/.well-known/x'],
    ['/a/..b/c.', '/a/..b/c.'],
    ['/a/...', '/a/...'],
    ['/caf%C3%A9', '/caf%C3%A9'],
    ['/a%20b', '/a%20b'],
    ['/api/x?q=1&r=/../', '/api/x?q=1&r=/../'],
    ['/api?', '/api?'],
    // dot-segments (RFC 3986 5.2.4)
    ['/api/../admin', '/admin'],
    ['/api/./x', '/api/x'],
    ['/a/b/../c', '/a/c'],
    ['/a/b/./c', '/a/b/c'],
    ['/a/b/..', '/a/'],
    ['/a/b/.', '/a/b/'],
    ['/a/..', '/'],
    ['/..', '/'],
    ['/.', '/'],
    ['/../a/b', '/a/b'],
    ['/a/b/../../../../c', '/c'],
    ['/api/../admin?x=/../y', '/admin?x=/../y'],
    ['/api/..?q', '/?q'],
    // encoded dots and other unreserved characters (RFC 3986 6.2.2.2)
    ['/api/%2e%2e/admin', '/admin'],
    ['/api/%2E%2E/admin', '/admin'],
    ['/api/.%2e/admin', '/admin'],
    ['/api/%2e./admin', '/admin'],
    ['/api/%2e/x', '/api/x'],
    ['/a%2eb', '/a.b'],
    ['/%61pi/x', '/api/x'],
    ['/%7Euser/%2D%5F', '/~user/-_'],
    ['/%61%C3%A9', '/a%C3%A9'],
    // merged slashes
    ['//admin', '/admin'],
    ['/api//x', '/api/x'],
    ['/api///x//', '/api/x/'],
    ['/a//..', '/'],
    ['//', '/'],
    ['/api//x?a=//b', '/api/x?a=//b'],
    // backslashes are slashes
    ['/api\\..\\admin', '/admin'],
    ['/a\\b', '/a/b'],
    ['/a\\\\b', '/a/b'],
    // escaped slashes are data within a segment
    ['/api/..%2Fadmin', '/api/..%2Fadmin'],
    ['/a%2fb%5Cc%5c', '/a%2fb%5Cc%5c'],
    ['/a/%2e%2e%2f/b', '/a/..%2f/b'],
    // refused
    ['/a%', BAD_ESCAPE],
    ['/a%2', BAD_ESCAPE],
    ['/a%zz', BAD_ESCAPE],
    ['/a%%2e', BAD_ESCAPE],
    ['/xyz/AAAAA%%0000/abc', BAD_ESCAPE],
    ['/a%00b', ENCODED_NUL],
    ['/xyz/.%00../abc', ENCODED_NUL],
    ['/a#frag', FRAGMENT],
    ['/a?q#frag', FRAGMENT],
    ['/a?q=%zz', '/a?q=%zz']
  ]
  for (const [target, expected] of cases) t.same(normalizePath(target, defaults), expected, `${target} -> ${JSON.stringify(expected)}`)
  t.end()
})

void t.test('each option on its own', (t) => {
  const cases: [options: Partial<PathOptions>, target: string, expected: string | { refused: string }][] = [
    // mergeSlashes off: empty segments stay, dot-segments still go
    [{ mergeSlashes: false }, '//admin', '//admin'],
    [{ mergeSlashes: false }, '/api//x/', '/api//x/'],
    [{ mergeSlashes: false }, '/a//../b', '/a/b'],
    [{ mergeSlashes: false }, '/a//..', '/a/'],
    [{ mergeSlashes: false }, '/api/../admin', '/admin'],
    // normalize off: only slashes are merged; dots, escapes and backslashes pass
    [{ normalize: false }, '/api/../admin', '/api/../admin'],
    [{ normalize: false }, '/api//../admin', '/api/../admin'],
    [{ normalize: false }, '/a%zz/%2e%2e', '/a%zz/%2e%2e'],
    [{ normalize: false }, '/a\\..\\b', '/a\\..\\b'],
    [{ normalize: false }, '/a#f', FRAGMENT],
    // both off: the path as sent (fragments still refused)
    [{ normalize: false, mergeSlashes: false }, '//a/../b%zz', '//a/../b%zz'],
    [{ normalize: false, mergeSlashes: false }, '/a#f', FRAGMENT],
    // escaped slashes refused
    [{ escapedSlashes: 'reject' }, '/api/..%2Fadmin', ESCAPED_SLASH],
    [{ escapedSlashes: 'reject' }, '/a%5cb', ESCAPED_SLASH],
    [{ escapedSlashes: 'reject' }, '/a/b?x=%2F', '/a/b?x=%2F'],
    // escaped slashes are separators
    [{ escapedSlashes: 'unescape' }, '/api/..%2Fadmin', '/admin'],
    [{ escapedSlashes: 'unescape' }, '/api%2F%2Fx', '/api/x'],
    [{ escapedSlashes: 'unescape' }, '/a%5Cb', '/a/b'],
    [{ escapedSlashes: 'unescape', mergeSlashes: false }, '/a%2F%2Fb', '/a//b']
  ]
  for (const [options, target, expected] of cases) {
    t.same(normalizePath(target, { ...defaults, ...options }), expected, `${JSON.stringify(options)} ${target} -> ${JSON.stringify(expected)}`)
  }
  t.end()
})

void t.test('a path with nothing to change is the very same string', (t) => {
  for (const target of ['/api/x', '/static/app.js?v=1', '/a%C3%A9/b', '/.well-known/x']) {
    t.equal(normalizePath(target, defaults), target, target)
  }
  t.end()
})

void t.test('absolute-form targets (RFC 9112 3.2.2)', (t) => {
  const cases: [target: string, expected: { authority: string; target: string } | { refused: string }][] = [
    ['http://evil.example/abs', { authority: 'evil.example', target: '/abs' }],
    ['https://api.example.com:8443/x/y?q=1', { authority: 'api.example.com:8443', target: '/x/y?q=1' }],
    ['HTTP://Evil.Example:81', { authority: 'Evil.Example:81', target: '/' }],
    ['http://h?q', { authority: 'h', target: '/?q' }],
    ['http://[::1]:8080/a/../b', { authority: '[::1]:8080', target: '/a/../b' }],
    ['http://127.0.0.1/', { authority: '127.0.0.1', target: '/' }],
    ['*', refused('asterisk-form (OPTIONS *) is not routed')],
    ['ftp://h/x', refused('the request target is neither a path nor an http(s) URI')],
    ['http:/h/x', refused('the request target is neither a path nor an http(s) URI')],
    ['http://user:pw@h/x', refused('an absolute-form target cannot carry userinfo (user@host)')],
    ['http:///x', refused('an absolute-form target must name a valid host')],
    ['http://:80/x', refused('an absolute-form target must name a valid host')],
    ['http://h:8a/x', refused('an absolute-form target must name a valid host')],
    ['http://a"b/x', refused('an absolute-form target must name a valid host')]
  ]
  for (const [target, expected] of cases) t.same(absoluteForm(target), expected, target)
  t.end()
})

void t.test('Host lines', (t) => {
  const cases: [raw: string[], expected: boolean][] = [
    [['Host', 'a', 'Accept', '*/*'], true],
    [['accept', '*/*'], true],
    [['Host', 'a', 'hOsT', 'b'], false],
    [['host', 'a', 'Date', 'x', 'host', 'a'], false],
    [['Hosts', 'a', 'Hos', 'b', 'host', 'c'], true]
  ]
  for (const [raw, expected] of cases) t.equal(hasOneHostAtMost(raw), expected, JSON.stringify(raw))
  t.end()
})
