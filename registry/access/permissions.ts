import type { Principal, Role } from './tokens.js'

/** What a route needs. Every route of the registry declares exactly one. */
export type Permission = 'public' | 'read' | 'register' | 'set-weights' | 'evict' | 'report'

const grants: Record<Role, ReadonlySet<Permission>> = {
  reader: new Set(['read']),
  registrar: new Set(['read', 'register']),
  // operators steer traffic, and may remove an instance known dead that self-preservation keeps
  operator: new Set(['read', 'set-weights', 'evict']),
  // routers read the watch stream and report what they see; they change nothing
  router: new Set(['read', 'report']),
  admin: new Set(['read', 'register', 'set-weights', 'evict', 'report'])
}

export type AccessDecision = { allowed: true } | { allowed: false; reason: string }

export function decide(principal: Principal, permission: Permission, service: string | undefined): AccessDecision {
  if (permission === 'public') return { allowed: true }
  if (!grants[principal.role].has(permission)) {
    return { allowed: false, reason: `the ${principal.role} role may not ${describe(permission)}` }
  }
  if (permission !== 'read' && service !== undefined && principal.services && !principal.services.has(service)) {
    return { allowed: false, reason: `this token may not ${describe(permission)} for service ${service}` }
  }
  return { allowed: true }
}

function describe(permission: Permission): string {
  switch (permission) {
    case 'read':
      return 'read the registry'
    case 'register':
      return 'register or deregister instances'
    case 'set-weights':
      return 'set weights'
    case 'evict':
      return 'evict instances'
    case 'report':
      return 'report router signals'
    default:
      return permission
  }
}
