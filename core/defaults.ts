import { Type } from '@sinclair/typebox'

/**
 * Where the registry is when nobody says otherwise. Its own port setting, every client's
 * URL setting (routers, sample services, the CLI) and the local stack read these, so a
 * change of default is one edit and they keep agreeing.
 */
export const DEFAULT_REGISTRY_PORT = 8761
export const DEFAULT_REGISTRY_URL = `http://127.0.0.1:${DEFAULT_REGISTRY_PORT}`

/** The registry URL setting every registry client shares (see core/config.ts). */
export const registryUrlSetting = () =>
  Type.String({ pattern: '^https?://', default: DEFAULT_REGISTRY_URL, flag: 'registry', env: 'SWITCHYARD_REGISTRY_URL', description: 'registry URL' })
