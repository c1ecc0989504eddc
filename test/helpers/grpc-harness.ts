import * as grpc from '@grpc/grpc-js'
import type { ClientDuplexStream, ClientReadableStream } from '@grpc/grpc-js'
import { greeterClient, type GreeterClient, type HelloReply, type HelloRequest } from '../../bench/servers/greeter.js'

export { greeterClient, startGreeter, type GreeterClient, type GreeterServer } from '../../bench/servers/greeter.js'

/** How a call ended, as the client saw it: replies, status, initial metadata and trailers. */
export interface CallOutcome {
  replies: HelloReply[]
  code: number
  details: string
  /** initial metadata (response headers) */
  headers: Record<string, unknown>
  /** trailing metadata */
  trailers: Record<string, unknown>
}

export interface CallOptions {
  metadata?: Record<string, string>
  deadlineMs?: number
}

function metadataOf(entries: Record<string, string> = {}): grpc.Metadata {
  const metadata = new grpc.Metadata()
  for (const [name, value] of Object.entries(entries)) metadata.set(name, value)
  return metadata
}

function callOptions(options: CallOptions): grpc.CallOptions {
  return options.deadlineMs === undefined ? {} : { deadline: Date.now() + options.deadlineMs }
}

/** Follows a call to its status; `replies` collects what a streaming call received. */
function outcome(
  call: grpc.ClientUnaryCall | ClientReadableStream<HelloReply> | ClientDuplexStream<Partial<HelloRequest>, HelloReply>,
  replies: HelloReply[]
): Promise<CallOutcome> {
  return new Promise((resolve) => {
    let headers: Record<string, unknown> = {}
    call.on('metadata', (metadata: grpc.Metadata) => (headers = metadata.getMap()))
    // a failed call also emits 'error' (not in every call type's typings): the status says it all
    ;(call as unknown as NodeJS.EventEmitter).on('error', () => {})
    call.on('status', (status: grpc.StatusObject) => {
      // The status can come before the last data events of a stream are handled.
      setImmediate(() => resolve({ replies, code: status.code, details: status.details, headers, trailers: status.metadata.getMap() }))
    })
  })
}

export function hello(client: GreeterClient, request: Partial<HelloRequest>, options: CallOptions = {}): Promise<CallOutcome> {
  const replies: HelloReply[] = []
  const call = client.Hello(request, metadataOf(options.metadata), callOptions(options), (_error, reply) => {
    if (reply) replies.push(reply)
  })
  return outcome(call, replies)
}

export function count(client: GreeterClient, howMany: number, intervalMs = 0, options: CallOptions = {}): Promise<CallOutcome> {
  const replies: HelloReply[] = []
  const call = client.Count({ count: howMany, intervalMs }, metadataOf(options.metadata), callOptions(options))
  call.on('data', (reply: HelloReply) => replies.push(reply))
  return outcome(call, replies)
}

export function collect(client: GreeterClient, names: string[], options: CallOptions = {}): Promise<CallOutcome> {
  const replies: HelloReply[] = []
  const call = client.Collect(metadataOf(options.metadata), callOptions(options), (_error, reply) => {
    if (reply) replies.push(reply)
  })
  for (const name of names) call.write({ name })
  call.end()
  return outcome(call as unknown as grpc.ClientUnaryCall, replies)
}

/** An open bidirectional call: `say` writes one request and resolves with its reply. */
export interface Chat {
  say(name: string): Promise<HelloReply>
  end(): Promise<CallOutcome>
}

export function chat(client: GreeterClient, options: CallOptions = {}): Chat {
  const replies: HelloReply[] = []
  const waiting: ((reply: HelloReply) => void)[] = []
  const call = client.Chat(metadataOf(options.metadata), callOptions(options))
  call.on('data', (reply: HelloReply) => {
    replies.push(reply)
    waiting.shift()?.(reply)
  })
  const ended = outcome(call, replies)
  return {
    say(name) {
      return new Promise((resolve) => {
        waiting.push(resolve)
        call.write({ name })
      })
    },
    end() {
      call.end()
      return ended
    }
  }
}

/** A client of `mesh.proxyUrl` (http://host:port), closed with the test. */
export function clientOf(proxyUrl: string, options: grpc.ChannelOptions = {}): GreeterClient {
  return greeterClient(new URL(proxyUrl).host, options)
}
