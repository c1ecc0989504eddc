import t from 'tap'
import { ConfigError } from '../../core/config.js'
import { parseRegistryConfig } from '../../registry/config.js'

t.test('flags override env, env overrides defaults', async (t) => {
  const defaults = parseRegistryConfig({}, {})
  t.equal(defaults.port, 8761)
  t.equal(defaults.leaseSeconds, 30)
  t.equal(defaults.renewSeconds, 10)
  t.equal(defaults.selfPreservationThreshold, 0.15)
  t.equal(parseRegistryConfig({}, { SWITCHYARD_REGISTRY_PORT: '9000' }).port, 9000)
  t.equal(parseRegistryConfig({ port: '9100' }, { SWITCHYARD_REGISTRY_PORT: '9000' }).port, 9100)
  t.equal(parseRegistryConfig({}, { SWITCHYARD_REGISTRY_PORT: '' }).port, 8761, 'an empty env var counts as unset')
})

t.test('every mistake is named with where it came from', async (t) => {
  const error = t.throws(() => parseRegistryConfig({ port: 'eighty', leaseSeconds: '0' }, { SWITCHYARD_SELF_PRESERVATION_THRESHOLD: '1.5' })) as ConfigError
  t.type(error, ConfigError)
  t.equal(error.problems.length, 3)
  t.match(error.problems.join('\n'), /--port/)
  t.match(error.problems.join('\n'), /--lease-seconds/)
  t.match(error.problems.join('\n'), /SWITCHYARD_SELF_PRESERVATION_THRESHOLD/)
  t.throws(() => parseRegistryConfig({ leaseSeconds: '10', renewSeconds: '10' }, {}), /renew-seconds/)
  t.throws(() => parseRegistryConfig({ logLevel: 'loud' }, {}), /--log-level/)
})
