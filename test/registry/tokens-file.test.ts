import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { SwitchyardError } from '../../core/errors.js'
import { readTokensFile, sha256, TokenSet, validateAdminToken } from '../../registry/access/tokens.js'

const secret = 'a-token-of-at-least-16-chars'

/** The code of what `run` throws, or undefined when it does not throw. */
async function codeOf(run: () => unknown): Promise<string | undefined> {
  try {
    await run()
    return undefined
  } catch (error) {
    return error instanceof SwitchyardError ? `${error.code} ${error.statusCode}` : `not a SwitchyardError: ${String(error)}`
  }
}

void t.test('a tokens file with a mistake is refused with a stable code', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'switchyard-tokens-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const cases: [string, string | undefined, string][] = [
    ['a missing file', undefined, 'TOKENS_FILE_UNREADABLE 500'],
    ['YAML that does not parse', 'tokens: [', 'TOKENS_FILE_UNREADABLE 500'],
    ['no tokens list', 'users: []', 'TOKENS_FILE_INVALID 500'],
    ['an unknown role', `tokens: [{ name: a, role: root, token: ${secret} }]`, 'TOKENS_FILE_INVALID 500'],
    ['a token that is too short', 'tokens: [{ name: a, role: reader, token: short }]', 'TOKENS_FILE_INVALID 500'],
    ['a name used twice', `tokens: [{ name: a, role: reader, token: ${secret} }, { name: a, role: admin, token: ${secret}x }]`, 'TOKENS_FILE_INVALID 500'],
    ['neither token nor sha256', 'tokens: [{ name: a, role: reader }]', 'TOKENS_FILE_INVALID 500'],
    ['both token and sha256', `tokens: [{ name: a, role: reader, token: ${secret}, sha256: ${'ab'.repeat(32)} }]`, 'TOKENS_FILE_INVALID 500']
  ]
  for (const [what, text, code] of cases) {
    const path = join(dir, `${what.replaceAll(' ', '-')}.yaml`)
    if (text !== undefined) await writeFile(path, text)
    t.equal(await codeOf(() => readTokensFile(path)), code, what)
  }
})

void t.test('a valid tokens file (YAML or JSON) reads back every entry', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'switchyard-tokens-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const entries = [
    { name: 'ci', role: 'operator', token: secret, services: ['api'] },
    { name: 'ops', role: 'admin', sha256: sha256(`${secret}-ops`).toString('hex') }
  ]
  const path = join(dir, 'tokens.json')
  await writeFile(path, JSON.stringify({ tokens: entries }))
  t.same(await readTokensFile(path), entries)

  const tokens = new TokenSet()
  for (const entry of await readTokensFile(path)) tokens.add(entry)
  t.equal(tokens.size, 2)
  t.same(tokens.authenticate(secret), { name: 'ci', role: 'operator', services: new Set(['api']) }, 'a plain token')
  t.same(tokens.authenticate(`${secret}-ops`), { name: 'ops', role: 'admin', services: undefined }, 'a token kept as its digest')
  t.equal(tokens.authenticate('not-a-known-token-at-all'), undefined)
})

void t.test('a token set refuses an entry without a secret, and a short admin token', async (t) => {
  t.equal(await codeOf(() => new TokenSet().add({ name: 'a', role: 'reader' })), 'TOKENS_FILE_INVALID 500')
  t.equal(await codeOf(() => validateAdminToken('short')), 'ADMIN_TOKEN_TOO_SHORT 500')
  t.equal(await codeOf(() => validateAdminToken(secret)), undefined)
})
