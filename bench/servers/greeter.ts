import { join } from 'node:path'
import * as grpc from '@grpc/grpc-js'
import { loadSync, type PackageDefinition } from '@grpc/proto-loader'
import { projectRoot } from '../lib/paths.js'

/**
 * The Greeter of test/fixtures/greeter.proto on @grpc/grpc-js: one method of each kind,
 * every reply naming the instance's version. Used by the router's gRPC tests and the gRPC
 * benchmark (as a process: greeter-server.ts).
 */

export interface HelloRequest {
  name: string
  delayMs: number
  failCode: number
}
export interface CountRequest {
  count: number
  intervalMs: number
}
export interface HelloReply {
  message: string
  version: string
}

export const GREETER_PROTO = join(projectRoot, 'test', 'fixtures', 'greeter.proto')
export const GREETER_SERVICE = 'switchyard.test.Greeter'

let definition: PackageDefinition | undefined

/** The proto, loaded once (camelCase fields: delay_ms is delayMs). */
export function greeterDefinition(): PackageDefinition {
  definition ??= loadSync(GREETER_PROTO, { keepCase: false, defaults: true })
  return definition
}

export interface GreeterClient extends grpc.Client {
  Hello(request: Partial<HelloRequest>, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<HelloReply>): grpc.ClientUnaryCall
  Count(request: Partial<CountRequest>, metadata?: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<HelloReply>
  Collect(metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<HelloReply>): grpc.ClientWritableStream<Partial<HelloRequest>>
  Chat(metadata?: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientDuplexStream<Partial<HelloRequest>, HelloReply>
}

type GreeterConstructor = new (address: string, credentials: grpc.ChannelCredentials, options?: grpc.ChannelOptions) => GreeterClient

/** A Greeter client for `address` (host:port), plaintext (h2c prior knowledge). */
export function greeterClient(address: string, options: grpc.ChannelOptions = {}): GreeterClient {
  const loaded = grpc.loadPackageDefinition(greeterDefinition()) as unknown as { switchyard: { test: { Greeter: GreeterConstructor } } }
  return new loaded.switchyard.test.Greeter(address, grpc.credentials.createInsecure(), options)
}

export interface GreeterServer {
  server: grpc.Server
  port: number
  version: string
  /** calls received, by method */
  calls: Record<'Hello' | 'Count' | 'Collect' | 'Chat', number>
  /** calls whose client went away (or whose deadline passed) before they ended */
  cancelled: number
  close(): Promise<void>
}

const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** A trailing metadata entry on every answer, so that tests see trailers pass through. */
function trailer(version: string): grpc.Metadata {
  const metadata = new grpc.Metadata()
  metadata.set('x-served-by', version)
  return metadata
}

/** Starts a Greeter on 127.0.0.1 (port 0: any free one). */
export async function startGreeter(version: string, port = 0): Promise<GreeterServer> {
  const server = new grpc.Server()
  const state: GreeterServer = {
    server,
    port: 0,
    version,
    calls: { Hello: 0, Count: 0, Collect: 0, Chat: 0 },
    cancelled: 0,
    close: () =>
      new Promise<void>((resolve) => {
        server.forceShutdown()
        resolve()
      })
  }
  const service = greeterDefinition()[GREETER_SERVICE] as grpc.ServiceDefinition
  server.addService(service, {
    Hello: (call: grpc.ServerUnaryCall<HelloRequest, HelloReply>, callback: grpc.sendUnaryData<HelloReply>) => {
      state.calls.Hello++
      call.on('cancelled', () => state.cancelled++)
      const { name, delayMs, failCode } = call.request
      void wait(delayMs).then(() => {
        if (call.cancelled) return
        if (failCode !== 0) return callback({ code: failCode, details: `failed on purpose by ${version}`, metadata: trailer(version) })
        callback(null, { message: `hello ${name}`, version }, trailer(version))
      })
    },
    Count: (call: grpc.ServerWritableStream<CountRequest, HelloReply>) => {
      state.calls.Count++
      call.on('cancelled', () => state.cancelled++)
      void (async () => {
        for (let index = 0; index < call.request.count && !call.cancelled; index++) {
          if (index > 0) await wait(call.request.intervalMs)
          call.write({ message: `count ${index}`, version })
        }
        if (!call.cancelled) call.end(trailer(version))
      })()
    },
    Collect: (call: grpc.ServerReadableStream<HelloRequest, HelloReply>, callback: grpc.sendUnaryData<HelloReply>) => {
      state.calls.Collect++
      const names: string[] = []
      call.on('data', (request: HelloRequest) => names.push(request.name))
      call.on('end', () => callback(null, { message: names.join(','), version }, trailer(version)))
    },
    Chat: (call: grpc.ServerDuplexStream<HelloRequest, HelloReply>) => {
      state.calls.Chat++
      call.on('cancelled', () => state.cancelled++)
      call.on('data', (request: HelloRequest) => call.write({ message: `echo ${request.name}`, version }))
      call.on('end', () => call.end(trailer(version)))
    }
  })
  state.port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound)))
  )
  return state
}
