/**
 * Builds the console (console/, a Preact app) into dist/console: one hashed JS bundle,
 * one hashed CSS file, index.html and a favicon, each also precompressed (gzip, brotli)
 * so the registry serves bytes from memory and never compresses per request.
 * Runs at `npm run build` (and `prepare`, so `npm ci && npm start` serves the console).
 * esbuild is a devDependency: this file runs at build time only, never in the registry.
 */
import { createHash } from 'node:crypto'
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { brotliCompressSync, constants, gzipSync } from 'node:zlib'
import { build } from 'esbuild'
import { ASSET_MANIFEST, type AssetManifest } from './console-assets.js'

/** The repository root, whether this runs from dist/registry/console or from source. */
function projectRoot(): string {
  const root = fileURLToPath(new URL('../..', import.meta.url))
  return basename(root) === 'dist' ? join(root, '..') : root
}

const indexHtml = (js: string, css: string): string =>
  [
    '<!doctype html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    '<meta name="referrer" content="no-referrer">',
    '<title>switchyard console</title>',
    '<link rel="icon" href="assets/favicon.svg" type="image/svg+xml">',
    `<link rel="stylesheet" href="assets/${css}">`,
    `<script type="module" src="assets/${js}"></script>`,
    '</head>',
    '<body>',
    '<div id="app"></div>',
    '<noscript>The switchyard console needs JavaScript.</noscript>',
    '</body>',
    '</html>',
    ''
  ].join('\n')

export async function buildConsole(root = projectRoot()): Promise<AssetManifest> {
  const source = join(root, 'console')
  const out = join(root, 'dist', 'console')
  await rm(out, { recursive: true, force: true })
  await mkdir(join(out, 'assets'), { recursive: true })
  const result = await build({
    entryPoints: [join(source, 'main.tsx')],
    bundle: true,
    minify: true,
    format: 'esm',
    // Browsers of the last two years: no down-levelling of classes, async or optional chaining.
    target: ['chrome115', 'firefox115', 'safari16.4'],
    jsx: 'automatic',
    jsxImportSource: 'preact',
    tsconfig: join(source, 'tsconfig.json'),
    outdir: join(out, 'assets'),
    entryNames: '[name]-[hash]',
    write: false,
    legalComments: 'eof',
    logLevel: 'warning',
    define: { 'process.env.NODE_ENV': '"production"' }
  })
  const files = new Map<string, Buffer>()
  let js = ''
  let css = ''
  for (const file of result.outputFiles) {
    const name = basename(file.path)
    files.set(name, Buffer.from(file.contents))
    if (name.endsWith('.js')) js = name
    if (name.endsWith('.css')) css = name
  }
  if (!js || !css) throw new Error(`the console build produced no ${js ? 'CSS' : 'JavaScript'} file`)
  files.set('favicon.svg', await readFile(join(source, 'favicon.svg')))

  const manifest: AssetManifest = { js: `assets/${js}`, css: `assets/${css}`, files: {} }
  const write = async (path: string, body: Buffer) => {
    await writeFile(join(out, path), body)
    const gzip = gzipSync(body, { level: 9 })
    const br = brotliCompressSync(body, { params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: body.length } })
    await writeFile(join(out, `${path}.gz`), gzip)
    await writeFile(join(out, `${path}.br`), br)
    manifest.files[path] = { bytes: body.length, gzip: gzip.length, br: br.length, sha256: createHash('sha256').update(body).digest('base64url').slice(0, 22) }
  }
  await write('index.html', Buffer.from(indexHtml(js, css)))
  for (const [name, body] of files) await write(`assets/${name}`, body)
  await writeFile(join(out, ASSET_MANIFEST), JSON.stringify(manifest, null, 2) + '\n')
  return manifest
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const manifest = await buildConsole()
  const js = manifest.files[manifest.js]
  console.log(`console built: ${manifest.js} ${js?.bytes} bytes (${js?.gzip} gzip, ${js?.br} brotli)`)
}
