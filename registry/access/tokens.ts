import { createHash, timingSafeEqual } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { Type, type Static } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import { parse as parseYaml } from 'yaml'
import { SwitchyardError } from '../../core/errors.js'
import { NAME_PATTERN } from '../../core/names.js'

export const ROLES = ['reader', 'registrar', 'operator', 'router', 'admin'] as const
export type Role = (typeof ROLES)[number]

export interface Principal {
  /** a label for logs and the audit trail; never the secret */
  readonly name: string
  readonly role: Role
  /** services this principal may change; undefined means all */
  readonly services: ReadonlySet<string> | undefined
}

const MIN_TOKEN_LENGTH = 16

const TokenEntry = Type.Object(
  {
    name: Type.String({ pattern: NAME_PATTERN }),
    role: Type.Union(ROLES.map((role) => Type.Literal(role))),
    token: Type.Optional(Type.String({ minLength: MIN_TOKEN_LENGTH })),
    sha256: Type.Optional(Type.String({ pattern: '^[0-9a-fA-F]{64}$' })),
    services: Type.Optional(Type.Array(Type.String({ pattern: NAME_PATTERN }), { minItems: 1 }))
  },
  { additionalProperties: false }
)
const TokensFile = Type.Object({ tokens: Type.Array(TokenEntry) }, { additionalProperties: false })
export type TokenEntry = Static<typeof TokenEntry>

interface StoredToken {
  digest: Buffer
  principal: Principal
}

export function sha256(value: string): Buffer {
  return createHash('sha256').update(value).digest()
}

/**
 * The tokens a registry accepts. Only SHA-256 digests are kept in memory; a presented
 * token is hashed and compared with every digest in constant time, so neither the
 * comparison nor the position of a match leaks through timing.
 */
export class TokenSet {
  private readonly tokens: StoredToken[] = []

  get size(): number {
    return this.tokens.length
  }

  add(entry: TokenEntry): void {
    const digest = entry.sha256 ? Buffer.from(entry.sha256, 'hex') : entry.token ? sha256(entry.token) : undefined
    if (!digest) throw new SwitchyardError('TOKENS_FILE_INVALID', `token ${entry.name} needs either "token" or "sha256"`)
    this.tokens.push({ digest, principal: { name: entry.name, role: entry.role, services: entry.services ? new Set(entry.services) : undefined } })
  }

  authenticate(presented: string): Principal | undefined {
    const digest = sha256(presented)
    let found: Principal | undefined
    for (const stored of this.tokens) {
      if (timingSafeEqual(stored.digest, digest) && !found) found = stored.principal
    }
    return found
  }
}

export function validateAdminToken(token: string): void {
  if (token.length < MIN_TOKEN_LENGTH) {
    throw new SwitchyardError('ADMIN_TOKEN_TOO_SHORT', `SWITCHYARD_ADMIN_TOKEN is too short: use at least ${MIN_TOKEN_LENGTH} characters (for example: openssl rand -hex 24)`)
  }
}

/** Reads a tokens file (YAML or JSON; JSON is YAML) and reports every mistake at once. */
export async function readTokensFile(path: string): Promise<TokenEntry[]> {
  let document: unknown
  try {
    document = parseYaml(await readFile(path, 'utf8'))
  } catch (error) {
    throw new SwitchyardError('TOKENS_FILE_UNREADABLE', `cannot read tokens file ${path}: ${(error as Error).message}`, { cause: error })
  }
  if (!Value.Check(TokensFile, document)) {
    const problems = [...Value.Errors(TokensFile, document)].slice(0, 10).map((e) => `${e.path || '/'}: ${e.message}`)
    throw new SwitchyardError('TOKENS_FILE_INVALID', `tokens file ${path} is invalid:\n  - ${problems.join('\n  - ')}`)
  }
  const names = new Set<string>()
  for (const entry of document.tokens) {
    if (names.has(entry.name)) throw new SwitchyardError('TOKENS_FILE_INVALID', `tokens file ${path}: the name ${entry.name} is used twice`)
    if ((entry.token === undefined) === (entry.sha256 === undefined)) {
      throw new SwitchyardError('TOKENS_FILE_INVALID', `tokens file ${path}: token ${entry.name} needs exactly one of "token" or "sha256"`)
    }
    names.add(entry.name)
  }
  return document.tokens
}
