import { Type } from '@sinclair/typebox'
import { INSTANCE_ID_PATTERN, NAME_PATTERN } from '../core/names.js'
import { LATENCY_BUCKETS } from '../core/signals/counters.js'

/** Request shapes. Fastify validates them; weights get their own checks in core/weights.ts. */
export const ServiceParams = Type.Object({ service: Type.String({ pattern: NAME_PATTERN }) })
export const InstanceParams = Type.Object({
  service: Type.String({ pattern: NAME_PATTERN }),
  id: Type.String({ pattern: INSTANCE_ID_PATTERN })
})

export const RegistrationBody = Type.Object(
  {
    version: Type.String({ pattern: NAME_PATTERN }),
    host: Type.String({ minLength: 1, maxLength: 253, pattern: '^[A-Za-z0-9._:\\[\\]-]+$' }),
    port: Type.Integer({ minimum: 1, maximum: 65535 }),
    id: Type.Optional(Type.String({ pattern: INSTANCE_ID_PATTERN })),
    metadata: Type.Optional(
      Type.Record(Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$' }), Type.String({ maxLength: 256 }), { maxProperties: 32, additionalProperties: false })
    )
  },
  { additionalProperties: false }
)

export const StatusBody = Type.Object({ status: Type.Union([Type.Literal('up'), Type.Literal('draining')]) }, { additionalProperties: false })

export const WeightsBody = Type.Object({ weights: Type.Object({}, { additionalProperties: true }) }, { additionalProperties: false })

export const WeightsQuery = Type.Object(
  { allowUnregistered: Type.Optional(Type.Union([Type.Literal('true'), Type.Literal('false')], { description: 'set weights for versions with no instance (pre-provisioning)' })) },
  { additionalProperties: false }
)

export const WatchQuery = Type.Object({ since: Type.Optional(Type.String({ pattern: '^[0-9]{1,15}$' })) }, { additionalProperties: false })

const Count = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER })

export const RouterParams = Type.Object({ router: Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$' }) })

/** A router's running totals: bounded in every dimension so one report cannot grow the registry without limit. */
const VersionCountersSchema = Type.Object(
  {
    statusClasses: Type.Array(Count, { minItems: 5, maxItems: 5 }),
    latency: Type.Array(Count, { minItems: LATENCY_BUCKETS, maxItems: LATENCY_BUCKETS }),
    messagesRouted: Count,
    messagesRejected: Count
  },
  { additionalProperties: false }
)

export const RouterReportBody = Type.Object(
  {
    kind: Type.Union([Type.Literal('http'), Type.Literal('messages')]),
    adminUrl: Type.String({ pattern: '^https?://[^\\s/?#@]+(/[^\\s]*)?$', maxLength: 256 }),
    appliedRevision: Count,
    startedAt: Count,
    services: Type.Record(
      Type.String({ pattern: NAME_PATTERN }),
      Type.Record(Type.String({ pattern: NAME_PATTERN }), VersionCountersSchema, { maxProperties: 64, additionalProperties: false }),
      { maxProperties: 2000, additionalProperties: false }
    )
  },
  { additionalProperties: false }
)

export const SignalsQuery = Type.Object({ window: Type.Optional(Type.String({ maxLength: 20 })) }, { additionalProperties: false })

export const SignalSeriesQuery = Type.Object(
  { window: Type.Optional(Type.String({ maxLength: 20 })), step: Type.Optional(Type.String({ maxLength: 20 })) },
  { additionalProperties: false }
)

const Percent = Type.Number({ minimum: 0, maximum: 100 })

export const RolloutBody = Type.Object(
  {
    canary: Type.String({ pattern: NAME_PATTERN }),
    baseline: Type.Optional(Type.String({ pattern: NAME_PATTERN })),
    steps: Type.Optional(Type.Array(Type.Number(), { minItems: 1, maxItems: 20 })),
    intervalSeconds: Type.Optional(Type.Number({ minimum: 0.1, maximum: 86_400 })),
    failureLimit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })),
    progressDeadlineSeconds: Type.Optional(Type.Number({ minimum: 1, maximum: 7 * 86_400 })),
    notify: Type.Optional(Type.String({ pattern: '^https?://', maxLength: 2048 })),
    analysis: Type.Optional(
      Type.Object(
        {
          maxErrorRatePercent: Type.Optional(Percent),
          maxP99Ms: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 3_600_000 })),
          maxLatencyRatio: Type.Optional(Type.Number({ minimum: 1, maximum: 1000 })),
          latencyRatioFloorMs: Type.Optional(Type.Number({ minimum: 0, maximum: 60_000 })),
          maxRejectRatePercent: Type.Optional(Percent),
          errorRateTolerancePercent: Type.Optional(Percent),
          minRequests: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000_000 }))
        },
        { additionalProperties: false }
      )
    )
  },
  { additionalProperties: false }
)

export const RolloutCommandParams = Type.Object({
  service: Type.String({ pattern: NAME_PATTERN }),
  command: Type.Union([Type.Literal('pause'), Type.Literal('resume'), Type.Literal('abort'), Type.Literal('promote')])
})
