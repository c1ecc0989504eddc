import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { chooseEncoding, defaultAssetsDir, loadAssets, type Asset } from './console-assets.js'

/**
 * No inline script or style, nothing from another origin, never framed: a name that slips
 * through as markup could still run nothing. Preact and uPlot set styles through the CSSOM,
 * which style-src does not govern, so no 'unsafe-inline' is needed.
 */
export const CONSOLE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "font-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'"
].join('; ')

/** esbuild's [name]-[hash] file names */
const HASHED = /-[A-Z0-9]{8}\.(?:js|css)$/

const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy': CONSOLE_CSP,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'permissions-policy': 'camera=(), microphone=(), geolocation=(), payment=()'
}

/**
 * GET /console/: the browser console, from the assets `npm run build` wrote to dist/console.
 * The assets are public (the console holds no secret: it asks for a token and sends it as a
 * bearer header to the API); everything it shows comes from the API under that token.
 */
export function consoleRoutes(app: FastifyInstance, options: { assetsDir?: string }, done: (error?: Error) => void): void {
  const assets = loadAssets(options.assetsDir ?? defaultAssetsDir())
  const config = { permission: 'public' as const }

  const send = (request: FastifyRequest, reply: FastifyReply, path: string) => {
    const asset = assets?.get(path)
    if (!asset) {
      const message = assets ? `no console asset ${path}` : 'the console is not built: run npm run build'
      return reply.code(404).headers(SECURITY_HEADERS).send({ code: 'ROUTE_NOT_FOUND', message })
    }
    // A hashed name (main-HASH.js) never changes content; index.html and the favicon may.
    return sendAsset(request, reply, asset, HASHED.test(path) ? 'public, max-age=31536000, immutable' : 'no-cache')
  }

  app.get('/console', { config }, (_request, reply) => reply.code(308).header('location', '/console/').headers(SECURITY_HEADERS).send())
  app.get('/console/', { config }, (request, reply) => send(request, reply, 'index.html'))
  app.get<{ Params: { file: string } }>('/console/assets/:file', { config }, (request, reply) => send(request, reply, `assets/${request.params.file}`))
  done()
}

function sendAsset(request: FastifyRequest, reply: FastifyReply, asset: Asset, cacheControl: string) {
  reply.headers(SECURITY_HEADERS).header('cache-control', cacheControl).header('etag', asset.etag).header('vary', 'accept-encoding')
  if (request.headers['if-none-match'] === asset.etag) return reply.code(304).send()
  const encoding = chooseEncoding(request.headers['accept-encoding'])
  if (encoding !== 'identity') reply.header('content-encoding', encoding)
  return reply.type(asset.type).send(asset.bodies[encoding])
}
