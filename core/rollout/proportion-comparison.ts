/**
 * Is the canary's failure proportion worse than the baseline's by more than `margin`,
 * with 99% confidence? A one-sided test on the difference of two proportions with the
 * Agresti-Caffo adjustment (one failure and one success added to each side), which
 * keeps its coverage at small counts and at 0% where the plain Wald test has no
 * variance at all (10 errors in 200 beside 0 in 3,800 has a Wald interval of width 0
 * on the baseline side). Kayenta and Flagger compare with Mann-Whitney or fixed
 * thresholds; a proportion test fits a count of failures best and needs no history.
 */

/** z of the 99th percentile of the standard normal distribution */
export const Z_99 = 2.3263478740408408

export interface ProportionComparison {
  /** adjusted canary proportion minus adjusted baseline proportion */
  difference: number
  /** (difference - margin) / standard error */
  z: number
  worse: boolean
}

export function canaryWorse(canaryFailures: number, canaryTotal: number, baselineFailures: number, baselineTotal: number, margin: number, z = Z_99): ProportionComparison {
  const pc = (canaryFailures + 1) / (canaryTotal + 2)
  const pb = (baselineFailures + 1) / (baselineTotal + 2)
  const se = Math.sqrt((pc * (1 - pc)) / (canaryTotal + 2) + (pb * (1 - pb)) / (baselineTotal + 2))
  const difference = pc - pb
  const score = (difference - margin) / se
  return { difference, z: score, worse: score > z }
}
