import { Type } from '@sinclair/typebox'
import { registryUrlSetting } from '../../core/defaults.js'

/**
 * The settings every router has towards the registry (HTTP and message router alike),
 * declared once: where it is, the token, how the router names itself, how often it reports.
 */
export function reportSettings(what: string, idEnv: string) {
  return {
    registry: registryUrlSetting(),
    token: Type.Optional(
      Type.String({ minLength: 1, flag: 'token', env: 'SWITCHYARD_TOKEN', description: 'token for the registry: the router role reads the watch and reports signals' })
    ),
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
