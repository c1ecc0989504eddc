import { Type } from '@sinclair/typebox'
import { INSTANCE_ID_PATTERN, NAME_PATTERN } from '../core/names.js'

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

export const WatchQuery = Type.Object({ since: Type.Optional(Type.String({ pattern: '^[0-9]{1,15}$' })) }, { additionalProperties: false })
