import { get } from './http.js'

/**
 * The Prometheus text format, read one sample line at a time (HELP and TYPE lines are
 * skipped). The npm parser parse-prometheus-text-format was tried first: it drops the
 * labels and _sum/_count lines of histograms, which these tests read.
 */
export interface Sample {
  name: string
  labels: Record<string, string>
  value: number
  /** the name and label text as written: one key per series */
  series: string
}

const SAMPLE_LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?[ \t]+(\S+)(?:[ \t]+-?\d+)?$/
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g
const SPECIAL_VALUES: Readonly<Record<string, number>> = { '+Inf': Infinity, '-Inf': -Infinity, NaN: NaN }

const unescapeLabel = (value: string) => value.replace(/\\(["\\n])/g, (_, escaped: string) => (escaped === 'n' ? '\n' : escaped))

export function samples(text: string): Sample[] {
  const out: Sample[] = []
  for (const line of text.split('\n')) {
    const match = SAMPLE_LINE.exec(line.trim())
    if (!match) continue
    const [, name = '', labelText = '', raw = ''] = match
    const labels: Record<string, string> = {}
    for (const [, key = '', value = ''] of labelText.matchAll(LABEL)) labels[key] = unescapeLabel(value)
    out.push({ name, labels, value: SPECIAL_VALUES[raw] ?? Number(raw), series: `${name}{${labelText}}` })
  }
  return out
}

/**
 * The sum of the samples named `name` whose labels include `labels`: one series when all
 * its labels are given. 0 when none matches (a labelled series shows only once used).
 */
export function metric(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0
  for (const sample of samples(text)) if (sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value)) sum += sample.value
  return sum
}

/** The text of `${adminUrl}/metrics`. */
export async function scrape(adminUrl: string): Promise<string> {
  return (await get(`${adminUrl}/metrics`)).text
}

/** One metric (as `metric`) read from `${adminUrl}/metrics` now. */
export async function scrapedMetric(adminUrl: string, name: string, labels: Record<string, string> = {}): Promise<number> {
  return metric(await scrape(adminUrl), name, labels)
}
