/**
 * What the signed-in token may do, as the registry decides it (registry/access/permissions.ts):
 * the console offers only that. The registry still checks every request.
 */
export interface Identity {
  name: string
  role: string
  /** services this token may change; null: all */
  services: string[] | null
}

/** Set weights and drive rollouts (the set-weights permission: operators and admins). */
export function canChangeTraffic(identity: Identity, service: string): boolean {
  if (identity.role !== 'operator' && identity.role !== 'admin') return false
  return identity.services === null || identity.services.includes(service)
}

export function mayChangeAnything(identity: Identity): boolean {
  return identity.role === 'operator' || identity.role === 'admin'
}
