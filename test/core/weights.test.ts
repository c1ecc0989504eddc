import t from 'tap'
import { SwitchyardError } from '../../core/errors.js'
import { parseWeights, weightsFromBasisPoints, weightsToBasisPoints } from '../../core/weights.js'

function codeOf(input: unknown): string | undefined {
  try {
    parseWeights(input)
    return undefined
  } catch (error) {
    return error instanceof SwitchyardError ? error.code : 'not a SwitchyardError'
  }
}

void t.test('accepts a split that adds up to exactly 100 and returns basis points in version order', (t) => {
  const parsed = parseWeights({ 'v1.10': 0.01, 'v1.9': 99.99 })
  t.same(
    [...parsed.entries()],
    [
      ['v1.9', 9999],
      ['v1.10', 1]
    ]
  )
  t.same([...parseWeights({ a: 33.33, b: 33.33, c: 33.34 }).values()], [3333, 3333, 3334])
  t.same([...parseWeights({ a: 0.1, b: 0.2, c: 99.7 }).values()], [10, 20, 9970], 'binary fraction noise is not a third decimal')
  t.end()
})

void t.test('names the rule each bad split breaks', (t) => {
  const cases: [unknown, string][] = [
    [{ a: 99.99 }, 'WEIGHTS_SUM_NOT_100'],
    [{ a: 100.01 }, 'WEIGHT_OUT_OF_RANGE'],
    [{ a: 50, b: 50.01 }, 'WEIGHTS_SUM_NOT_100'],
    [{ a: -1, b: 101 }, 'WEIGHT_OUT_OF_RANGE'],
    [{ a: '100' }, 'WEIGHT_NOT_A_NUMBER'],
    [{ a: Number.NaN }, 'WEIGHT_NOT_A_NUMBER'],
    [{ a: Infinity }, 'WEIGHT_NOT_A_NUMBER'],
    [{ a: null }, 'WEIGHT_NOT_A_NUMBER'],
    [{ a: 33.333, b: 66.667 }, 'WEIGHT_TOO_PRECISE'],
    [{}, 'WEIGHTS_EMPTY'],
    [{ a: 0 }, 'WEIGHTS_SUM_NOT_100'],
    [{ '.a': 100 }, 'INVALID_NAME'],
    [{ 'a b': 100 }, 'INVALID_NAME'],
    [[100], 'VALIDATION_FAILED'],
    [null, 'VALIDATION_FAILED'],
    [Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`v${i}`, i === 0 ? 100 : 0])), 'TOO_MANY_VERSIONS']
  ]
  for (const [input, code] of cases) t.equal(codeOf(input), code, JSON.stringify(input)?.slice(0, 60))
  t.end()
})

void t.test('a split with no version above 0 cannot add up to 100', (t) => {
  t.equal(codeOf({ a: 0, b: 0 }), 'WEIGHTS_SUM_NOT_100')
  t.equal(codeOf({ a: 50.000000001, b: 49.999999999 }), 'WEIGHT_TOO_PRECISE', 'a tiny third decimal is still a third decimal')
  t.end()
})

void t.test('converts between percent and basis points without drift', (t) => {
  const weights = { 'v1.3': 97.5, 'v1.4': 2.5 }
  t.same(weightsFromBasisPoints(weightsToBasisPoints(weights)), weights)
  t.end()
})
