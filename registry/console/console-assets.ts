import { existsSync, readFileSync } from 'node:fs'
import { basename, extname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

/** What the build wrote: the entry files and every file's size as sent, per encoding. */
export interface AssetManifest {
  /** paths under the console's root, e.g. assets/main-HASH.js */
  js: string
  css: string
  files: Record<string, { bytes: number; gzip: number; br: number; sha256: string }>
}

export const ASSET_MANIFEST = 'manifest.json'

export type Encoding = 'br' | 'gzip' | 'identity'

export interface Asset {
  type: string
  etag: string
  /** the file as built and its precompressed copies */
  bodies: Record<Encoding, Buffer>
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml'
}

/**
 * dist/console, seen from this file in dist/registry/console (the built registry) or in
 * registry/console (tests running the sources): the assets are only ever built into dist.
 */
export function defaultAssetsDir(): string {
  const root = resolve(fileURLToPath(new URL('../..', import.meta.url)))
  return basename(root) === 'dist' ? join(root, 'console') : join(root, 'dist', 'console')
}

/**
 * The built console, read once into memory (about 100 KB with its compressed copies):
 * answers are buffers, never a file read or a compression per request. Undefined when
 * the console was not built.
 */
export function loadAssets(dir: string): Map<string, Asset> | undefined {
  const manifestPath = join(dir, ASSET_MANIFEST)
  if (!existsSync(manifestPath)) return undefined
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as AssetManifest
  const assets = new Map<string, Asset>()
  for (const [path, info] of Object.entries(manifest.files)) {
    const file = join(dir, path)
    assets.set(path, {
      type: TYPES[extname(path)] ?? 'application/octet-stream',
      etag: `"${info.sha256}"`,
      bodies: { identity: readFileSync(file), gzip: readFileSync(`${file}.gz`), br: readFileSync(`${file}.br`) }
    })
  }
  return assets
}

/** The best encoding the client accepts: brotli, then gzip, else none (q=0 refuses one). */
export function chooseEncoding(acceptEncoding: string | undefined): Encoding {
  if (!acceptEncoding) return 'identity'
  const accepted = new Map<string, number>()
  for (const part of acceptEncoding.split(',')) {
    const [name, ...params] = part.trim().toLowerCase().split(';')
    if (!name) continue
    const q = params.map((param) => /^\s*q=([0-9.]+)\s*$/.exec(param)).find((match) => match)
    accepted.set(name, q ? Number(q[1]) : 1)
  }
  const ok = (name: string) => (accepted.get(name) ?? accepted.get('*') ?? 0) > 0
  if (ok('br')) return 'br'
  if (ok('gzip')) return 'gzip'
  return 'identity'
}
