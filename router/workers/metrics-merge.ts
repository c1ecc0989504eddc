import { AggregatorRegistry, type Aggregator, type Registry } from 'prom-client'

/** One process's metrics as prom-client's getMetricsAsJSON gives them (what crosses the IPC channel). */
export type MetricsJson = Awaited<ReturnType<Registry['getMetricsAsJSON']>>

/**
 * Gauges that are not summed over workers (prom-client sums unless a metric says
 * otherwise): the table revision and its last update are those every worker has reached,
 * the start time is the oldest process's.
 */
const AGGREGATORS: Readonly<Record<string, Aggregator>> = {
  switchyard_route_table_revision: 'min',
  switchyard_route_table_last_update_seconds: 'min',
  process_start_time_seconds: 'min'
}

/** The whole router's metrics from each process's (prom-client getMetricsAsJSON), as one registry. */
export function mergeMetrics(parts: readonly MetricsJson[]): Registry {
  for (const part of parts) {
    for (const metric of part) {
      const aggregator = AGGREGATORS[metric.name]
      if (aggregator) metric.aggregator = aggregator
    }
  }
  return AggregatorRegistry.aggregate([...parts])
}

/**
 * What a worker that exited leaves behind in the sums: its counters and histograms as last
 * read (a total never goes down when a worker is replaced, so Prometheus sees no reset);
 * its gauges end with it.
 */
export async function retained(earlier: MetricsJson, exited: MetricsJson): Promise<MetricsJson> {
  // (typed as an enum by prom-client, a string at run time)
  const kept = exited.filter((metric) => ['counter', 'histogram'].includes(String(metric.type)))
  if (earlier.length === 0) return kept
  return (await mergeMetrics([earlier, kept]).getMetricsAsJSON()) as MetricsJson
}
