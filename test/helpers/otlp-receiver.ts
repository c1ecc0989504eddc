import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface ReceivedSpan {
  service: string
  name: string
  traceId: string
  spanId: string
  parentSpanId: string | undefined
  kind: number
  attributes: Record<string, unknown>
}

export interface OtlpReceiver {
  url: string
  spans: ReceivedSpan[]
  /** raw request bodies of other paths (e.g. Jaeger's /api/traces) with their content type */
  others: { path: string; contentType: string | undefined; bytes: number }[]
  close(): Promise<void>
}

function attributeValue(value: Record<string, unknown> | undefined): unknown {
  if (!value) return undefined
  for (const key of ['stringValue', 'intValue', 'doubleValue', 'boolValue']) if (key in value) return key === 'intValue' ? Number(value[key]) : value[key]
  return undefined
}

/** A small OTLP/HTTP (JSON) trace receiver on 127.0.0.1, like Jaeger's :4318. */
export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = []
  const others: OtlpReceiver['others'] = []
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = []
    request.on('data', (chunk: Buffer) => chunks.push(chunk))
    request.on('end', () => {
      const body = Buffer.concat(chunks)
      if (request.url === '/v1/traces' && request.headers['content-type']?.includes('json')) {
        const document = JSON.parse(body.toString('utf8')) as { resourceSpans: any[] }
        for (const resourceSpans of document.resourceSpans ?? []) {
          const service = String(attributeValue(resourceSpans.resource?.attributes?.find((a: any) => a.key === 'service.name')?.value) ?? '')
          for (const scope of resourceSpans.scopeSpans ?? []) {
            for (const span of scope.spans ?? []) {
              const attributes: Record<string, unknown> = {}
              for (const attribute of span.attributes ?? []) attributes[attribute.key] = attributeValue(attribute.value)
              spans.push({ service, name: span.name, traceId: span.traceId, spanId: span.spanId, parentSpanId: span.parentSpanId || undefined, kind: span.kind, attributes })
            }
          }
        }
      } else {
        others.push({ path: request.url ?? '', contentType: request.headers['content-type'], bytes: body.length })
      }
      response.setHeader('content-type', 'application/json')
      response.end('{}')
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    spans,
    others,
    close: () => new Promise<void>((resolve) => server.close(() => resolve()))
  }
}
