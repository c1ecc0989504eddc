/** The console's pages, in the URL's fragment (never a token there, only names). */
export type Route = { page: 'services' } | { page: 'service'; name: string } | { page: 'rollouts' } | { page: 'history'; service: string | undefined } | { page: 'routers' }

export function parseRoute(hash: string): Route {
  const parts = hash
    .replace(/^#\/?/, '')
    .split('/')
    .filter(Boolean)
    .map((part) => {
      try {
        return decodeURIComponent(part)
      } catch {
        return part
      }
    })
  const [page, name] = parts
  if (page === 'services' && name) return { page: 'service', name }
  if (page === 'rollouts') return { page: 'rollouts' }
  if (page === 'history') return { page: 'history', service: name }
  if (page === 'routers') return { page: 'routers' }
  return { page: 'services' }
}

export function href(route: Route): string {
  switch (route.page) {
    case 'services':
      return '#/services'
    case 'service':
      return `#/services/${encodeURIComponent(route.name)}`
    case 'rollouts':
      return '#/rollouts'
    case 'history':
      return route.service ? `#/history/${encodeURIComponent(route.service)}` : '#/history'
    case 'routers':
      return '#/routers'
  }
}
