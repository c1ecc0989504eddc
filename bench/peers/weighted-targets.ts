import { SmoothWeightedRoundRobin } from '../../core/smooth-weighted-round-robin.js'

/** A target of a peer proxy: an upstream origin and its weight. */
export interface WeightedTarget {
  origin: string
  weight: number
}

/**
 * The same split the router does (smooth weighted round-robin, as nginx does), for the
 * Node peers that have no weighting of their own: `next()` is one array read and one
 * small loop, so the peers pay no more for the split than switchyard does.
 */
export function weightedPicker(targets: readonly WeightedTarget[]): () => string {
  if (targets.length === 0) throw new Error('no targets')
  const roundRobin = new SmoothWeightedRoundRobin(targets.map((target) => target.weight))
  const origins = targets.map((target) => target.origin)
  return () => origins[roundRobin.next()] as string
}

/** Reads `node peer.js PORT ORIGIN=WEIGHT ...` */
export function parsePeerArguments(argv: readonly string[]): { port: number; targets: WeightedTarget[] } {
  const port = Number(argv[0])
  const targets = argv.slice(1).map((argument) => {
    const at = argument.lastIndexOf('=')
    return { origin: argument.slice(0, at), weight: Number(argument.slice(at + 1)) }
  })
  if (!Number.isInteger(port) || port <= 0 || targets.length === 0 || targets.some((target) => !target.origin.startsWith('http://') || !(target.weight > 0))) {
    throw new Error(`usage: PORT http://HOST:PORT=WEIGHT ... (got ${argv.join(' ')})`)
  }
  return { port, targets }
}
