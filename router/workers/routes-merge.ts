/** One worker's GET /routes (router/admin/admin-app.ts), as far as the merge reads it. */
export interface RoutesView {
  revision: number
  services: {
    name: string
    versions: {
      name: string
      instances: { id: string; inflight: number; ejected: boolean; ejectedUntil: string | null }[]
    }[]
  }[]
}

/**
 * The router's table as one /routes answer: the workers' tables are the same (one watch,
 * fanned out), so the one at the lowest revision is shown (what every worker has reached);
 * what each worker keeps of its own is added up: in-flight requests summed, an instance
 * ejected by any worker shown ejected until the latest end. Fields it does not know pass through.
 */
export function mergeRoutes<V extends RoutesView>(views: readonly V[]): (V & { workers: number }) | undefined {
  const lowest = views.reduce<V | undefined>((low, view) => (low === undefined || view.revision < low.revision ? view : low), undefined)
  if (!lowest) return undefined
  const merged = structuredClone(lowest)
  const instances = new Map<string, RoutesView['services'][number]['versions'][number]['instances'][number]>()
  for (const service of merged.services) {
    for (const version of service.versions) for (const instance of version.instances) instances.set(`${service.name}\n${version.name}\n${instance.id}`, instance)
  }
  for (const view of views) {
    if (view === lowest) continue
    for (const service of view.services) {
      for (const version of service.versions) {
        for (const instance of version.instances) {
          const into = instances.get(`${service.name}\n${version.name}\n${instance.id}`)
          if (!into) continue
          into.inflight += instance.inflight
          if (instance.ejected) {
            into.ejected = true
            if (instance.ejectedUntil !== null && (into.ejectedUntil === null || instance.ejectedUntil > into.ejectedUntil)) into.ejectedUntil = instance.ejectedUntil
          }
        }
      }
    }
  }
  return { ...merged, workers: views.length }
}
