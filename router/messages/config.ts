import { readFile } from 'node:fs/promises'
import { Type, type Static } from '@sinclair/typebox'
import { reportSettings } from '../signals/report-settings.js'
import { Value } from '@sinclair/typebox/value'
import { parse as parseYaml } from 'yaml'
import { ConfigError, logLevelSetting, parseConfig } from '../../core/config.js'
import { NAME_PATTERN } from '../../core/names.js'

/** Process settings of the message router: flags, env, defaults (see core/config.ts). */
export const MessageRouterSettings = Type.Object({
  adminHost: Type.String({
    minLength: 1,
    default: '0.0.0.0',
    flag: 'admin-host',
    env: 'SWITCHYARD_MESSAGE_ROUTER_ADMIN_HOST',
    description: 'address of the admin and publish endpoints'
  }),
  adminPort: Type.Integer({
    minimum: 0,
    maximum: 65535,
    default: 9902,
    flag: 'admin-port',
    env: 'SWITCHYARD_MESSAGE_ROUTER_ADMIN_PORT',
    description: 'port of /healthz /readyz /metrics /routes and POST /v1/topics/:topic/messages'
  }),
  ...reportSettings('message router', 'SWITCHYARD_MESSAGE_ROUTER_ID'),
  broker: Type.String({
    pattern: '^(memory|amqps?://.+)$',
    default: 'memory',
    flag: 'broker',
    env: 'SWITCHYARD_BROKER',
    description: '"memory" (in-process) or an AMQP URL such as amqp://guest:guest@127.0.0.1:5672'
  }),
  config: Type.Optional(Type.String({ minLength: 1, flag: 'config', env: 'SWITCHYARD_MESSAGE_ROUTER_CONFIG', description: 'topics and delivery settings (YAML or JSON)' })),
  topics: Type.Optional(Type.String({ minLength: 1, flag: 'topics', env: 'SWITCHYARD_TOPICS', description: 'topics without a file: "orders=orders-worker,emails=mailer"' })),
  logLevel: logLevelSetting()
})
export type MessageRouterSettings = Static<typeof MessageRouterSettings>

const Topic = Type.Object({ name: Type.String({ pattern: NAME_PATTERN }), service: Type.String({ pattern: NAME_PATTERN }) }, { additionalProperties: false })
export type TopicConfig = Static<typeof Topic>

export const MessageRouterFile = Type.Object(
  {
    topics: Type.Array(Topic, { default: [] }),
    stickyKey: Type.Object({ header: Type.String({ minLength: 1, default: 'x-switchyard-key' }) }, { additionalProperties: false, default: {} }),
    /** unacknowledged messages per topic in flight through the router */
    prefetch: Type.Integer({ minimum: 1, maximum: 10_000, default: 512 }),
    /** how long an unroutable message waits before it is tried again */
    requeueDelayMs: Type.Integer({ minimum: 10, maximum: 3_600_000, default: 5_000 }),
    /** tries before an unroutable message goes to the dead-letter queue */
    maxAttempts: Type.Integer({ minimum: 1, maximum: 1_000, default: 20 }),
    weightedChoice: Type.Union([Type.Literal('smooth-round-robin'), Type.Literal('random')], { default: 'smooth-round-robin' }),
    reconnect: Type.Object(
      { initialDelayMs: Type.Integer({ minimum: 1, default: 200 }), maxDelayMs: Type.Integer({ minimum: 1, default: 10_000 }) },
      { additionalProperties: false, default: {} }
    )
  },
  { additionalProperties: false }
)
export type MessageRouterConfig = Static<typeof MessageRouterFile>

export function parseMessageRouterConfig(document: unknown, source: string): MessageRouterConfig {
  const withDefaults = Value.Default(MessageRouterFile, structuredClone(document ?? {}))
  if (!Value.Check(MessageRouterFile, withDefaults)) {
    throw new ConfigError([...Value.Errors(MessageRouterFile, withDefaults)].slice(0, 20).map((error) => `${source}${error.path || '/'}: ${error.message}`))
  }
  const names = new Set<string>()
  for (const topic of withDefaults.topics) {
    if (names.has(topic.name)) throw new ConfigError([`${source}/topics: topic ${topic.name} is listed twice`])
    names.add(topic.name)
  }
  return withDefaults
}

/** "orders=orders-worker,emails=mailer" as SWITCHYARD_TOPICS carries it. */
export function parseTopicsShorthand(text: string): TopicConfig[] {
  return text.split(',').map((entry) => {
    const match = /^\s*([^=\s]+)=([^=\s]+)\s*$/.exec(entry)
    if (!match) throw new ConfigError([`SWITCHYARD_TOPICS entry "${entry}" is not TOPIC=SERVICE (for example orders=orders-worker)`])
    return { name: match[1] as string, service: match[2] as string }
  })
}

export async function loadMessageRouterConfig(settings: Pick<MessageRouterSettings, 'config' | 'topics'>): Promise<MessageRouterConfig> {
  let document: unknown = {}
  if (settings.config) {
    try {
      document = parseYaml(await readFile(settings.config, 'utf8'))
    } catch (error) {
      throw new ConfigError([`cannot read message router config ${settings.config}: ${(error as Error).message}`])
    }
  }
  const extra = settings.topics ? parseTopicsShorthand(settings.topics) : []
  const base = (document ?? {}) as { topics?: unknown[] }
  return parseMessageRouterConfig({ ...base, topics: [...(base.topics ?? []), ...extra] }, settings.config ?? 'SWITCHYARD_TOPICS')
}

export function parseMessageRouterSettings(flags: Readonly<Record<string, unknown>>, env: Readonly<Record<string, string | undefined>>): MessageRouterSettings {
  return parseConfig(MessageRouterSettings, flags, env)
}

/** Queue names of a topic: where producers publish, and where messages go from there. */
export const queuesOf = (topic: string) => ({
  source: topic,
  wait: `${topic}.wait`,
  deadLetter: `${topic}.dlq`,
  /** what version workers reject lands here first: the router counts it per version, then moves it to deadLetter */
  rejected: `${topic}.rejected`,
  version: (version: string) => `${topic}.${version}`
})
