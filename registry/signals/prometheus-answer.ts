import { Type, type Static } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import { SwitchyardError } from '../../core/errors.js'
import { compareVersions } from '../../core/names.js'

/** A sample's value as the HTTP API writes it: [unix seconds, "decimal" | "NaN" | "+Inf" | "-Inf"]. */
const SampleValue = Type.Tuple([Type.Number(), Type.String()])

/** The parts of an instant query's answer (/api/v1/query) this source reads. */
const QueryAnswer = Type.Union([
  Type.Object({
    status: Type.Literal('success'),
    data: Type.Union([
      Type.Object({ resultType: Type.Literal('vector'), result: Type.Array(Type.Object({ metric: Type.Record(Type.String(), Type.String()), value: SampleValue })) }),
      Type.Object({ resultType: Type.Literal('scalar'), result: SampleValue }),
      Type.Object({ resultType: Type.Union([Type.Literal('matrix'), Type.Literal('string')]), result: Type.Unknown() })
    ])
  }),
  Type.Object({ status: Type.Literal('error'), errorType: Type.Optional(Type.String()), error: Type.Optional(Type.String()) })
])
type QueryAnswer = Static<typeof QueryAnswer>
export type QueryData = Extract<QueryAnswer, { status: 'success' }>['data']

const unavailable = (message: string) => new SwitchyardError('SIGNALS_UNAVAILABLE', message)

/**
 * The data of an instant query's answer; Prometheus' own errors (a bad query, a timeout)
 * and answers of another shape become SIGNALS_UNAVAILABLE naming `what` was asked.
 */
export function queryData(answer: unknown, what: string): QueryData {
  if (!Value.Check(QueryAnswer, answer)) throw unavailable(`Prometheus answered the ${what} query with something that is not a query result`)
  if (answer.status === 'error') throw unavailable(`Prometheus refused the ${what} query: ${answer.errorType ?? 'error'}: ${(answer.error ?? 'no message').slice(0, 500)}`)
  return answer.data
}

/**
 * The one number a signal query yields: a scalar, or a vector of at most one element.
 * Nothing (an empty vector: no such series) and values that are not finite (NaN from a
 * quantile without observations) are undefined.
 */
export function singleValue(data: QueryData, what: string): number | undefined {
  let raw: string | undefined
  if (data.resultType === 'scalar') raw = data.result[1]
  else if (data.resultType === 'vector') {
    if (data.result.length > 1) throw unavailable(`the ${what} query returned ${data.result.length} series, not one value: aggregate it (sum(...))`)
    raw = data.result[0]?.value[1]
  } else throw unavailable(`the ${what} query returned a ${data.resultType}, not one value: make it an instant vector`)
  const value = raw === undefined ? NaN : Number(raw)
  return Number.isFinite(value) ? value : undefined
}

/** The distinct non-empty values of `label` across a vector's elements, in version order. */
export function labelValues(data: QueryData, label: string, what: string): string[] {
  if (data.resultType !== 'vector') throw unavailable(`the ${what} query returned a ${data.resultType}, not a vector with a "${label}" label`)
  const values = new Set<string>()
  for (const element of data.result) {
    const value = element.metric[label]
    if (value !== undefined && value !== '') values.add(value)
  }
  return [...values].sort(compareVersions)
}
