import { useState } from 'preact/hooks'
import { ApiError, signIn, type Whoami } from '../live/api.js'

/**
 * The token is typed (or pasted) here and checked against GET /v1/whoami. It goes in
 * sessionStorage and an Authorization header only: a form that is never submitted, so the
 * token never lands in a URL or the browser's history.
 */
export function SignInPage(props: { notice: string | undefined; onSignedIn: (token: string, identity: Whoami) => void }) {
  const [token, setToken] = useState('')
  const [error, setError] = useState<string | undefined>(undefined)
  const [busy, setBusy] = useState(false)

  const submit = async (event: Event) => {
    event.preventDefault()
    const value = token.trim()
    if (!value) return setError('Enter a token.')
    setBusy(true)
    setError(undefined)
    try {
      props.onSignedIn(value, await signIn(value))
    } catch (caught) {
      setError(caught instanceof ApiError && caught.status === 401 ? 'The registry does not accept this token.' : `Cannot sign in: ${(caught as Error).message}`)
    } finally {
      setBusy(false)
    }
  }

  return (
    <main id="main" class="sign-in">
      <h1>switchyard console</h1>
      <p>Sign in with a registry token. A reader's token sees everything and changes nothing; an operator's may change traffic.</p>
      {props.notice && (
        <p class="warn" role="status">
          {props.notice}
        </p>
      )}
      <form onSubmit={(event) => void submit(event)} method="post" action="#">
        <div class="field">
          <label for="token">Token</label>
          <input
            id="token"
            name="token"
            type="password"
            autocomplete="off"
            spellcheck={false}
            value={token}
            onInput={(event) => setToken((event.target as HTMLInputElement).value)}
          />
        </div>
        <button type="submit" class="primary" disabled={busy}>
          Sign in
        </button>
        {error && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
      </form>
      <p class="muted">The token stays in this tab's session storage and is sent only as an Authorization header to this registry.</p>
    </main>
  )
}
