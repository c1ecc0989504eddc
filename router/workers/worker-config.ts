import type { ProxyConfig } from '../config.js'

/**
 * The config each of `workers` worker processes runs with. `upgrades.maxConnections` is a
 * limit of the router, not of a process: each worker gets an even share of it, rounded up
 * (round-robin hands connections out in turn, so the workers fill alike). The other
 * limits are rates or per-instance pools and stay as written (README "Per worker").
 */
export function workerConfig(config: ProxyConfig, workers: number): ProxyConfig {
  if (workers <= 1) return config
  const maxConnections = Math.ceil(config.upgrades.maxConnections / workers)
  return { ...config, upgrades: { ...config.upgrades, maxConnections } }
}
