/**
 * The token lives in sessionStorage: gone when the tab closes, never sent anywhere but the
 * Authorization header, never in a URL or a cookie.
 */
const KEY = 'switchyard.console.token'

export function storedToken(): string | undefined {
  try {
    return sessionStorage.getItem(KEY) ?? undefined
  } catch {
    return undefined
  }
}

export function storeToken(token: string): void {
  sessionStorage.setItem(KEY, token)
}

export function forgetToken(): void {
  sessionStorage.removeItem(KEY)
}
