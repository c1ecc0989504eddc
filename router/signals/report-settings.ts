import { Type } from '@sinclair/typebox'

/**
 * The two settings every reporting router has (HTTP and message router alike), declared
 * once: how it names itself to the registry, and how often it reports.
 */
export function reportSettings(what: string, idEnv: string) {
  return {
    routerId: Type.Optional(
      Type.String({
        pattern: '^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$',
        flag: 'router-id',
        env: idEnv,
        description: `how this ${what} names itself to the registry (default: host name and admin port)`
      })
    ),
    reportIntervalSeconds: Type.Number({
      minimum: 0.05,
      maximum: 2,
      default: 1,
      flag: 'report-interval-seconds',
      env: 'SWITCHYARD_REPORT_INTERVAL_SECONDS',
      description: `how often the ${what} reports its applied revision and per-version signals to the registry (needs a router or admin token)`
    })
  }
}
