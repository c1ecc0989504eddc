import { render } from 'preact'
import 'uplot/dist/uPlot.min.css'
import './styles.css'
import { App } from './app.js'
import { ApiError, signIn, type Whoami } from './live/api.js'
import { prefetchServices } from './live/prefetch.js'
import { forgetToken, storedToken } from './live/session.js'

/** Start: with a token from this tab's session, check it once, then show the console or the sign-in. */
async function main(): Promise<void> {
  const root = document.getElementById('app') as HTMLElement
  const token = storedToken()
  let identity: Whoami | undefined
  if (token) {
    prefetchServices(token)
    try {
      identity = await signIn(token)
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) forgetToken()
    }
  }
  render(<App token={identity ? token : undefined} identity={identity} />, root)
}

void main()
