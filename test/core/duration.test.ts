import t from 'tap'
import { parseDuration } from '../../core/duration.js'
import { SwitchyardError } from '../../core/errors.js'

void t.test('parseDuration: units, bare numbers in the given unit, exact ms', (t) => {
  const cases: [string, 'ms' | 's' | undefined, number][] = [
    ['500ms', undefined, 500],
    ['30s', undefined, 30_000],
    ['2m', undefined, 120_000],
    ['1h', undefined, 3_600_000],
    ['1.5s', undefined, 1_500],
    ['0.001s', undefined, 1],
    ['30', undefined, 30_000],
    ['30', 's', 30_000],
    ['250', 'ms', 250],
    ['0', undefined, 0]
  ]
  for (const [text, bare, ms] of cases) t.equal(bare === undefined ? parseDuration(text, 'window') : parseDuration(text, 'window', bare), ms, `${text} (${bare ?? 'default'})`)
  t.end()
})

void t.test('parseDuration refuses what it would have to guess', (t) => {
  for (const text of ['', '30 s', '1m30s', '-5s', '5d', 's', '1.2345s', '1e3', 'forever', '9999999999s']) {
    let caught: unknown
    try {
      parseDuration(text, '--timeout')
    } catch (error) {
      caught = error
    }
    t.ok(caught instanceof SwitchyardError && caught.code === 'VALIDATION_FAILED' && caught.message.startsWith('--timeout must be a duration'), JSON.stringify(text))
  }
  t.end()
})
