/**
 * The registry's API as the console calls it: same origin, the token as a bearer header
 * (never a cookie, never in a URL), JSON both ways, errors as {code, message}.
 */

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string
  ) {
    super(message)
  }
}

export interface Whoami {
  name: string
  role: 'reader' | 'registrar' | 'operator' | 'router' | 'admin'
  /** the services this token may change; null: all */
  services: string[] | null
}

export interface ApiOptions {
  token: string
  /** called once when the registry refuses the token (401): the session is over */
  onUnauthorized?: () => void
  /** the registry's clock minus the browser's, from each answer's Date header (ms) */
  onClockOffset?: (offsetMs: number) => void
}

export class Api {
  constructor(private readonly options: ApiOptions) {}

  get token(): string {
    return this.options.token
  }

  get<T>(path: string, signal?: AbortSignal): Promise<T> {
    return this.request<T>('GET', path, undefined, {}, signal)
  }

  async request<T>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}, signal?: AbortSignal): Promise<T> {
    const started = Date.now()
    const response = await fetch(path, {
      method,
      headers: {
        authorization: `Bearer ${this.options.token}`,
        accept: 'application/json',
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...headers
      },
      body: body === undefined ? null : JSON.stringify(body),
      cache: 'no-store',
      credentials: 'omit',
      ...(signal ? { signal } : {})
    })
    const date = response.headers.get('date')
    if (date && this.options.onClockOffset) this.options.onClockOffset(Date.parse(date) + 500 - (started + Date.now()) / 2)
    const text = await response.text()
    const json: unknown = text === '' ? undefined : safeJson(text)
    if (!response.ok) {
      const error = json as { code?: string; message?: string } | undefined
      if (response.status === 401) this.options.onUnauthorized?.()
      throw new ApiError(response.status, error?.code ?? `HTTP_${response.status}`, error?.message ?? (text.slice(0, 200) || response.statusText))
    }
    return json as T
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

/** Checks a token by asking the registry who it is: the sign-in. */
export async function signIn(token: string): Promise<Whoami> {
  return new Api({ token }).get<Whoami>('/v1/whoami')
}
