import { Kind, Type, TypeRegistry, type TSchema } from '@sinclair/typebox'
import t from 'tap'
import { ConfigError, logLevelSetting, parseConfig, settingMeta } from '../../core/config.js'
import { parseRegistryConfig } from '../../registry/config.js'

void t.test('flags override env, env overrides defaults', (t) => {
  const defaults = parseRegistryConfig({}, {})
  t.equal(defaults.port, 8761)
  t.equal(defaults.leaseSeconds, 30)
  t.equal(defaults.renewSeconds, 10)
  t.equal(defaults.selfPreservationThreshold, 0.15)
  t.equal(parseRegistryConfig({}, { SWITCHYARD_REGISTRY_PORT: '9000' }).port, 9000)
  t.equal(parseRegistryConfig({ port: '9100' }, { SWITCHYARD_REGISTRY_PORT: '9000' }).port, 9100)
  t.equal(parseRegistryConfig({}, { SWITCHYARD_REGISTRY_PORT: '' }).port, 8761, 'an empty env var counts as unset')
  t.end()
})

void t.test('every mistake is named with where it came from', (t) => {
  const error = t.throws(() => parseRegistryConfig({ port: 'eighty', leaseSeconds: '0' }, { SWITCHYARD_SELF_PRESERVATION_THRESHOLD: '1.5' })) as ConfigError
  t.type(error, ConfigError)
  t.equal(error.problems.length, 3)
  t.match(error.problems.join('\n'), /--port/)
  t.match(error.problems.join('\n'), /--lease-seconds/)
  t.match(error.problems.join('\n'), /SWITCHYARD_SELF_PRESERVATION_THRESHOLD/)
  t.throws(() => parseRegistryConfig({ leaseSeconds: '10', renewSeconds: '10' }, {}), /renew-seconds/)
  t.throws(() => parseRegistryConfig({ logLevel: 'loud' }, {}), /--log-level/)
  t.end()
})

/** A setting as components declare them. */
const setting = <T extends TSchema>(schema: T, name: string): T => Object.assign(schema, { flag: name, env: `TEST_${name.toUpperCase()}`, description: name })

void t.test('parseConfig: each source named in its problem; required settings; optional ones left out', (t) => {
  const schema = Type.Object({
    port: setting(Type.Integer({ minimum: 1, default: 0 }), 'port'),
    name: setting(Type.String({ minLength: 1 }), 'name'),
    note: Type.Optional(setting(Type.String(), 'note'))
  })
  t.same(parseConfig(schema, { port: '80', name: 'x' }, {}), { port: 80, name: 'x' }, 'an optional setting without a value is left out')
  const cases: [Record<string, unknown>, Record<string, string>, string[]][] = [
    [{ port: '80' }, {}, ['--name (or TEST_NAME) is required']],
    [{ name: 'x' }, {}, ['default of --port: Expected integer to be greater or equal to 1 (got 0)']],
    [{ port: '80' }, { TEST_NAME: '' }, ['--name (or TEST_NAME) is required']],
    [{ port: '80', name: '' }, {}, ['--name: Expected string length greater or equal to 1 (got "")']], // invalid, so not also "required"
    [{}, { TEST_PORT: 'x', TEST_NAME: 'y' }, ['TEST_PORT: Expected integer (got "x")']]
  ]
  for (const [flags, env, problems] of cases) {
    const error = t.throws(() => parseConfig(schema, flags, env)) as ConfigError
    t.same(error.problems, problems, JSON.stringify({ flags, env }))
    t.equal(error.message, `invalid configuration:\n  - ${problems.join('\n  - ')}`)
  }
  t.end()
})

void t.test('parseConfig: a schema with nothing required, and a validator that fails without saying why', (t) => {
  t.same(parseConfig(Type.Object({ note: Type.Optional(setting(Type.String(), 'note')) }), {}, {}), {})
  // Checks and error messages are separate passes; a kind whose two answers differ still gets a problem.
  let calls = 0
  TypeRegistry.Set('FailsOnce', () => calls++ > 0)
  t.teardown(() => TypeRegistry.Delete('FailsOnce'))
  const flaky = Type.Object({ odd: setting(Type.Unsafe<string>({ [Kind]: 'FailsOnce' }), 'odd') })
  t.same((t.throws(() => parseConfig(flaky, { odd: 'x' }, {})) as ConfigError).problems, ['--odd: invalid value (got "x")'])
  t.end()
})

void t.test('settingMeta: a setting must say how it is given', (t) => {
  t.same(settingMeta(setting(Type.String(), 'name')), { flag: 'name', env: 'TEST_NAME', description: 'name' })
  t.throws(() => settingMeta(Type.String()), /must declare flag, env and description/)
  t.throws(() => settingMeta(Object.assign(Type.String(), { flag: 'a', env: 'A' })), /must declare/)
  t.same(logLevelSetting().default, 'info')
  t.same(settingMeta(logLevelSetting()), { flag: 'log-level', env: 'SWITCHYARD_LOG_LEVEL', description: 'log level' })
  t.end()
})

void t.test('parseConfig: a Transform setting decodes its value, and its refusal is the problem', (t) => {
  const list = setting(
    Type.Transform(Type.String({ default: 'a' }))
      .Decode((text) => {
        if (text.includes(' ')) throw new Error(`"${text}" has a space`)
        return text.toUpperCase()
      })
      .Encode((text) => text),
    'list'
  )
  const schema = Type.Object({ list })
  t.same(parseConfig(schema, {}, {}), { list: 'A' }, 'the default, decoded')
  t.same(parseConfig(schema, { list: 'b,c' }, {}), { list: 'B,C' })
  const cases: [Record<string, unknown>, Record<string, string>, string[]][] = [
    [{ list: 'b c' }, {}, ['--list: "b c" has a space']],
    [{}, { TEST_LIST: 'd e' }, ['TEST_LIST: "d e" has a space']]
  ]
  for (const [flags, env, problems] of cases) t.same((t.throws(() => parseConfig(schema, flags, env)) as ConfigError).problems, problems, JSON.stringify({ flags, env }))
  // A refused value is not also reported as missing.
  const required = Type.Object({
    list: setting(
      Type.Transform(Type.String())
        .Decode((text) => {
          throw new Error(`no ${text}`)
        })
        .Encode((text) => text),
      'list'
    )
  })
  t.same((t.throws(() => parseConfig(required, { list: 'x' }, {})) as ConfigError).problems, ['--list: no x'])
  t.end()
})
