import { Type, type Static } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import { ConfigError } from '../../core/config.js'
import { NAME_PATTERN } from '../../core/names.js'

/**
 * PromQL templates, one per signal, as the Prometheus signal source evaluates them (like
 * Flagger's metric templates). Placeholders are `{{service}}`, `{{version}}`, `{{topic}}` and
 * `{{window}}` (a Prometheus duration such as `60s`); each template says which it needs.
 */
export type Placeholder = 'service' | 'version' | 'topic' | 'window'

/** What each template may and must contain. Version discovery returns label sets, the rest one number. */
export const TEMPLATE_PLACEHOLDERS = {
  /** the service's HTTP versions: a vector with a `version` label per element */
  versions: { required: ['service'], allowed: ['service', 'window'] },
  /** HTTP answers of one version in the window */
  requests: { required: ['service', 'version', 'window'], allowed: ['service', 'version', 'window'] },
  /** of those, the ones that count as errors (5xx) */
  errors: { required: ['service', 'version', 'window'], allowed: ['service', 'version', 'window'] },
  /** latency quantiles, in ms */
  p50Ms: { required: ['service', 'version', 'window'], allowed: ['service', 'version', 'window'] },
  p99Ms: { required: ['service', 'version', 'window'], allowed: ['service', 'version', 'window'] },
  /** the versions one topic of the service routes to (vector with a `version` label) */
  messageVersions: { required: ['topic'], allowed: ['service', 'topic', 'window'] },
  /** messages of one topic routed to one version's queue in the window */
  messagesRouted: { required: ['topic', 'version', 'window'], allowed: ['service', 'topic', 'version', 'window'] },
  /** messages of one topic that one version's workers rejected in the window */
  messagesRejected: { required: ['topic', 'version', 'window'], allowed: ['service', 'topic', 'version', 'window'] }
} as const satisfies Record<string, { required: readonly Placeholder[]; allowed: readonly Placeholder[] }>

export type TemplateName = keyof typeof TEMPLATE_PLACEHOLDERS
export type PromqlTemplates = Record<TemplateName, string>

export interface PrometheusQueries {
  templates: PromqlTemplates
  /** service -> the topics whose messages are its traffic (the message router's topic -> service, inverted) */
  topics: Record<string, string[]>
}

/**
 * How many of a counter's events fall in the window, exactly: the value at the end minus
 * the value one window earlier (0 for a series born inside the window). increase() would
 * extrapolate (100 requests read as 101.7) and miss a series' first scrape entirely, and
 * rollouts count requests against minRequests. A counter that went down restarted: its
 * value at the end is what it counted since.
 */
const countInWindow = (selector: string, by = ''): string => `sum${by}((${selector} - (${selector} offset {{window}} or ${selector} * 0)) >= 0 or ${selector})`

const HTTP = 'service="{{service}}",version="{{version}}"'
const MESSAGES = 'topic="{{topic}}",version="{{version}}"'
const quantileMs = (q: number) => `1000 * histogram_quantile(${q}, ${countInWindow(`switchyard_request_duration_seconds_bucket{${HTTP}}`, ' by (le)')})`

/** Templates for the metrics switchyard's routers export (router/metrics.ts, router/messages/metrics.ts). */
export const DEFAULT_TEMPLATES: PromqlTemplates = {
  versions: 'group by (version) (switchyard_requests_total{service="{{service}}"})',
  requests: countInWindow(`switchyard_requests_total{${HTTP}}`),
  errors: countInWindow(`switchyard_requests_total{${HTTP},code=~"5.."}`),
  p50Ms: quantileMs(0.5),
  p99Ms: quantileMs(0.99),
  messageVersions: 'group by (version) (switchyard_messages_total{topic="{{topic}}",outcome="routed"})',
  messagesRouted: countInWindow(`switchyard_messages_total{${MESSAGES},outcome="routed"}`),
  messagesRejected: countInWindow(`switchyard_messages_rejected_total{${MESSAGES}}`)
}

const Name = Type.String({ pattern: NAME_PATTERN })
const OptionalTemplate = Type.Optional(Type.String({ minLength: 1, maxLength: 8192 }))

/** The `--prometheus-queries` file: every key optional, unknown keys refused. */
export const PrometheusQueriesFile = Type.Object(
  {
    /** templates replacing the defaults, by signal */
    queries: Type.Optional(
      Type.Object(Object.fromEntries(Object.keys(TEMPLATE_PLACEHOLDERS).map((name) => [name, OptionalTemplate])) as Record<TemplateName, typeof OptionalTemplate>, {
        additionalProperties: false
      })
    ),
    /** topic -> service, as the message router's config maps them */
    topics: Type.Optional(Type.Record(Name, Name, { additionalProperties: false }))
  },
  { additionalProperties: false }
)
export type PrometheusQueriesFile = Static<typeof PrometheusQueriesFile>

const PLACEHOLDER = /\{\{\s*([^{}\s]*)\s*\}\}/g

/** The placeholder names a template uses, in order of first use. */
export function placeholdersOf(template: string): string[] {
  return [...new Set([...template.matchAll(PLACEHOLDER)].map((match) => match[1] as string))]
}

/** Checks a parsed `--prometheus-queries` document and merges it over the defaults. */
export function parsePrometheusQueries(document: unknown, source: string): PrometheusQueries {
  const candidate = document ?? {}
  if (!Value.Check(PrometheusQueriesFile, candidate)) {
    throw new ConfigError([...Value.Errors(PrometheusQueriesFile, candidate)].slice(0, 20).map((error) => `${source}${error.path || '/'}: ${error.message}`))
  }
  const problems: string[] = []
  const templates: PromqlTemplates = { ...DEFAULT_TEMPLATES, ...candidate.queries }
  for (const name of Object.keys(candidate.queries ?? {}) as TemplateName[]) {
    const used = placeholdersOf(templates[name])
    const { required, allowed } = TEMPLATE_PLACEHOLDERS[name]
    const missing = required.filter((placeholder) => !used.includes(placeholder))
    const unknown = used.filter((placeholder) => !(allowed as readonly string[]).includes(placeholder))
    if (missing.length > 0) problems.push(`${source}/queries/${name}: must contain ${missing.map((p) => `{{${p}}}`).join(', ')}`)
    if (unknown.length > 0)
      problems.push(`${source}/queries/${name}: ${unknown.map((p) => `{{${p}}}`).join(', ')} cannot be filled here (it may use ${allowed.map((p) => `{{${p}}}`).join(', ')})`)
  }
  if (problems.length > 0) throw new ConfigError(problems)
  const topics: Record<string, string[]> = {}
  for (const [topic, service] of Object.entries(candidate.topics ?? {})) (topics[service] ??= []).push(topic)
  return { templates, topics }
}

/** A PromQL double-quoted string's content: backslashes and quotes escaped. */
export function escapePromqlString(value: string): string {
  return value.replace(/[\\"]/g, (character) => `\\${character}`).replace(/\n/g, '\\n')
}

/**
 * The template with its placeholders replaced. Names are escaped for a double-quoted
 * PromQL string (the defaults put them in `label="..."`); the window is a duration.
 */
export function fillTemplate(template: string, values: Partial<Record<Placeholder, string>>): string {
  return template.replace(PLACEHOLDER, (_, name: string) => {
    const value = values[name as Placeholder]
    // parsePrometheusQueries refuses templates whose placeholders cannot be filled.
    if (value === undefined) throw new Error(`no value for {{${name}}}`)
    return name === 'window' ? value : escapePromqlString(value)
  })
}

/** ms as a Prometheus duration: whole seconds as "60s", anything else in ms ("1500ms"); at least 1ms. */
export function promDuration(ms: number): string {
  const whole = Math.max(1, Math.round(ms))
  return whole % 1000 === 0 ? `${whole / 1000}s` : `${whole}ms`
}
