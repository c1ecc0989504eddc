import t from 'tap'
import { Z_99, canaryWorse } from '../../../core/rollout/proportion-comparison.js'

void t.test('Z_99 is the 99th percentile of the standard normal distribution', (t) => {
  t.equal(Z_99, 2.3263478740408408)
  t.end()
})

void t.test('canaryWorse: Agresti-Caffo one-sided test of canary minus baseline against a margin', (t) => {
  // [canary failures, canary total, baseline failures, baseline total, margin, adjusted difference, z, worse]
  const cases: [string, number, number, number, number, number, number, number, boolean][] = [
    ['5% (10 of 200) beside 0% (0 of 3800)', 10, 200, 0, 3800, 0.0025, 11 / 202 - 1 / 3802, 3.2372931917418963, true],
    ['0.5% beside 0.4% over 50,000 each', 250, 50_000, 200, 50_000, 0.0025, 251 / 50_002 - 201 / 50_002, -3.536036617648155, false],
    ['0.5% beside 0.4% at small counts (1 of 200, 1 of 250)', 1, 200, 1, 250, 0.0025, 2 / 202 - 2 / 252, -0.05995760193491628, false],
    ['0.9% beside 0.0% over 10,000 each', 90, 10_000, 0, 10_000, 0.0025, 91 / 10_002 - 1 / 10_002, 6.806898724930717, true],
    ['3% beside 0% over 1,000 each', 30, 1_000, 0, 1_000, 0.0025, 31 / 1_002 - 1 / 1_002, 4.935071239736778, true],
    ['6% of only 50 is not enough to tell', 3, 50, 0, 50, 0.0025, 4 / 52 - 1 / 52, 1.327640315215067, false],
    ['2.5% of 200 is not enough even without a margin', 5, 200, 0, 200, 0, 6 / 202 - 1 / 202, 1.915043833200472, false],
    ['a canary better than its baseline', 0, 200, 10, 200, 0.0025, 1 / 202 - 11 / 202, -3.1118530611791613, false],
    ['no data on either side: one failure and one success each', 0, 0, 0, 0, 0.0025, 0, -0.005, false]
  ]
  for (const [name, cf, ct, bf, bt, margin, difference, z, worse] of cases) {
    const result = canaryWorse(cf, ct, bf, bt, margin)
    t.ok(Math.abs(result.difference - difference) < 1e-15, `${name}: difference ${result.difference}`)
    t.ok(Math.abs(result.z - z) < 1e-9, `${name}: z ${result.z}`)
    t.equal(result.worse, worse, `${name}: worse`)
  }
  t.end()
})

void t.test('the confidence can be asked for', (t) => {
  t.same(canaryWorse(2, 200, 0, 200, 0.0025, 0.5).worse, true, 'z 0.75 beats a one-sided 69%')
  t.same(canaryWorse(2, 200, 0, 200, 0.0025).worse, false, 'not 99%')
  t.end()
})
