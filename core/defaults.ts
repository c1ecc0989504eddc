import { Type } from '@sinclair/typebox'
import { parseRegistryUrls } from './registry-urls.js'

/**
 * Where the registry is when nobody says otherwise. Its own port setting, every client's
 * URL setting (routers, sample services, the CLI) and the local stack read these, so a
 * change of default is one edit and they keep agreeing.
 */
export const DEFAULT_REGISTRY_PORT = 8761
export const DEFAULT_REGISTRY_URL = `http://127.0.0.1:${DEFAULT_REGISTRY_PORT}`

// Module-level, so that every declaration of the setting is the same schema.
const decodeRegistryUrls = (text: string): string => parseRegistryUrls(text).join(',')
const encodeRegistryUrls = (text: string): string => text

/**
 * The registry URL setting every registry client shares (see core/config.ts): one URL or
 * several replicas' URLs, comma-separated. Each is checked at start-up (a bad one is named);
 * the value stays a string, the origins joined by commas, for registry/client/registry-endpoints.ts.
 */
export const registryUrlSetting = () =>
  Type.Transform(
    Type.String({
      minLength: 1,
      default: DEFAULT_REGISTRY_URL,
      flag: 'registry',
      env: 'SWITCHYARD_REGISTRY_URL',
      description: "registry URL, or several replicas' URLs comma-separated (http://a:8761,http://b:8761): tried in order, the next on failure"
    })
  )
    .Decode(decodeRegistryUrls)
    .Encode(encodeRegistryUrls)
