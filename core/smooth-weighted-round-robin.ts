/**
 * Smooth weighted round-robin (the algorithm nginx uses): each pick adds every weight to
 * its running score, takes the highest score and subtracts the total from it. Over any
 * run of `total` picks each entry is chosen exactly `weight` times, spread evenly rather
 * than in bursts, so a 1% canary gets every 100th request, not 100 in a row.
 */
export class SmoothWeightedRoundRobin {
  private readonly weights: Int32Array
  private readonly scores: Int32Array
  private readonly total: number

  constructor(weights: readonly number[]) {
    this.weights = Int32Array.from(weights)
    this.scores = new Int32Array(weights.length)
    let total = 0
    for (const weight of weights) total += weight
    this.total = total
  }

  /** Index of the next entry, or -1 when every weight is 0. */
  next(): number {
    if (this.total === 0) return -1
    const { weights, scores } = this
    let best = -1
    let bestScore = -Infinity
    for (let i = 0; i < weights.length; i++) {
      const score = (scores[i] as number) + (weights[i] as number)
      scores[i] = score
      if (score > bestScore && (weights[i] as number) > 0) {
        best = i
        bestScore = score
      }
    }
    scores[best] = (scores[best] as number) - this.total
    return best
  }
}
