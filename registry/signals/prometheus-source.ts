import { readFile } from 'node:fs/promises'
import { parse as parseYaml } from 'yaml'
import { ConfigError } from '../../core/config.js'
import { compareVersions } from '../../core/names.js'
import type { ServiceSignals } from '../../core/signals/figures.js'
import { labelValues, singleValue } from './prometheus-answer.js'
import { PrometheusClient } from './prometheus-client.js'
import { prometheusFigures, type SignalValues } from './prometheus-figures.js'
import { DEFAULT_TEMPLATES, fillTemplate, parsePrometheusQueries, promDuration, type Placeholder, type PrometheusQueries, type TemplateName } from './promql-templates.js'
import type { SignalSource } from './signal-source.js'

export interface PrometheusSignalsOptions {
  /** Prometheus' base URL; user:password in it become a basic auth header */
  url: string
  queries: PrometheusQueries
  /** per query (default 5 s) */
  timeoutMs?: number
}

/**
 * Per-version figures read from a Prometheus that scrapes the routers, through PromQL
 * templates (promql-templates.ts). Versions are discovered in Prometheus itself (the
 * `versions` and `messageVersions` templates), so it also answers for versions the registry
 * no longer lists. Every query is an instant query at `to`; they run concurrently. Any
 * failure is SIGNALS_UNAVAILABLE (503): the endpoint answers it and a rollout tries again
 * on its next tick.
 */
export class PrometheusSignals implements SignalSource {
  readonly name = 'prometheus'
  private readonly client: PrometheusClient
  private readonly queries: PrometheusQueries

  constructor(options: PrometheusSignalsOptions) {
    this.client = new PrometheusClient({ url: options.url, ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }) })
    this.queries = options.queries
  }

  /** where it reads, without credentials (for logs) */
  get url(): string {
    return this.client.url
  }

  async signals(service: string, from: number, to: number): Promise<ServiceSignals> {
    const base = { service, window: promDuration(to - from) }
    const topics = this.queries.topics[service] ?? []
    const [httpVersions, ...topicVersions] = await Promise.all([
      this.labels('versions', base, to),
      ...topics.map((topic) => this.labels('messageVersions', { ...base, topic }, to))
    ])
    const values = new Map<string, SignalValues>()
    const valuesOf = (version: string) => {
      let entry = values.get(version)
      if (!entry) values.set(version, (entry = {}))
      return entry
    }
    const pending: Promise<void>[] = []
    // Only what was discovered is asked for: a version without HTTP series has no HTTP figures to fetch.
    for (const version of httpVersions) {
      const entry = valuesOf(version)
      for (const name of ['requests', 'errors', 'p50Ms', 'p99Ms'] as const) {
        pending.push(this.value(name, { ...base, version }, to).then((value) => void (entry[name] = value)))
      }
    }
    topics.forEach((topic, i) => {
      for (const version of topicVersions[i] ?? []) {
        const entry = valuesOf(version)
        // Summed over the service's topics.
        for (const name of ['messagesRouted', 'messagesRejected'] as const) {
          pending.push(this.value(name, { ...base, topic, version }, to).then((value) => void (entry[name] = (entry[name] ?? 0) + (value ?? 0))))
        }
      }
    })
    await Promise.all(pending)
    const windowMs = to - from
    const versions: ServiceSignals['versions'] = {}
    for (const version of [...values.keys()].sort(compareVersions)) versions[version] = prometheusFigures(values.get(version) as SignalValues, windowMs)
    return { service, windowMs, source: this.name, versions }
  }

  private async labels(name: 'versions' | 'messageVersions', values: Partial<Record<Placeholder, string>>, at: number): Promise<string[]> {
    return labelValues(await this.client.query(fillTemplate(this.queries.templates[name], values), at, name), 'version', name)
  }

  private async value(name: TemplateName, values: Partial<Record<Placeholder, string>>, at: number): Promise<number | undefined> {
    return singleValue(await this.client.query(fillTemplate(this.queries.templates[name], values), at, name), name)
  }
}

/**
 * The templates of a `--prometheus-queries` YAML file merged over the defaults, or the
 * defaults alone without a file. An unreadable or invalid file is a ConfigError.
 */
export async function loadPrometheusQueries(path: string | undefined): Promise<PrometheusQueries> {
  if (path === undefined) return { templates: { ...DEFAULT_TEMPLATES }, topics: {} }
  let document: unknown
  try {
    document = parseYaml(await readFile(path, 'utf8'))
  } catch (error) {
    throw new ConfigError([`cannot read --prometheus-queries ${path}: ${(error as Error).message}`])
  }
  return parsePrometheusQueries(document, path)
}
