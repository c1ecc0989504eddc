import { useEffect, useLayoutEffect, useMemo, useState } from 'preact/hooks'
import { Api, type Whoami } from './live/api.js'
import { Console, useConsole, useLive } from './live/hooks.js'
import { forgetToken, storeToken } from './live/session.js'
import { LiveStore } from './live/store.js'
import { mayChangeAnything } from './lib/permissions.js'
import { href, parseRoute, type Route } from './lib/route.js'
import { HistoryPage } from './pages/history.js'
import { RolloutsPage } from './pages/rollouts.js'
import { RoutersPage } from './pages/routers.js'
import { ServicePage } from './pages/service.js'
import { ServicesPage } from './pages/services.js'
import { SignInPage } from './pages/sign-in.js'

interface Session {
  token: string
  identity: Whoami
}

function useRoute(): Route {
  const [route, setRoute] = useState(parseRoute(location.hash))
  useEffect(() => {
    const update = () => setRoute(parseRoute(location.hash))
    addEventListener('hashchange', update)
    // Effects run after the first paint: a hash that changed in between (a link followed
    // while the console was starting) fired its hashchange before anyone listened.
    update()
    return () => removeEventListener('hashchange', update)
  }, [])
  return route
}

export function App(props: { identity: Whoami | undefined; token: string | undefined }) {
  const [session, setSession] = useState<Session | undefined>(props.token && props.identity ? { token: props.token, identity: props.identity } : undefined)
  const [notice, setNotice] = useState<string | undefined>(undefined)
  const signOut = (message?: string) => {
    forgetToken()
    setSession(undefined)
    setNotice(message)
  }
  if (!session) {
    return (
      <SignInPage
        notice={notice}
        onSignedIn={(token, identity) => {
          storeToken(token)
          setNotice(undefined)
          setSession({ token, identity })
        }}
      />
    )
  }
  return <SignedIn key={session.token} session={session} onSignOut={signOut} />
}

function SignedIn(props: { session: Session; onSignOut: (message?: string) => void }) {
  const { session, onSignOut } = props
  const context = useMemo(() => {
    const unauthorized = () => onSignOut('The registry no longer accepts this token: sign in again.')
    const clock = { offset: (_offsetMs: number) => {} }
    const api = new Api({ token: session.token, onUnauthorized: unauthorized, onClockOffset: (offsetMs) => clock.offset(offsetMs) })
    const store = new LiveStore(api, unauthorized)
    clock.offset = (offsetMs) => store.setClockOffset(offsetMs)
    return { api, store, identity: session.identity }
  }, [session.token])
  useEffect(() => {
    void context.store.start()
    return () => context.store.stop()
  }, [context])
  return (
    <Console.Provider value={context}>
      <Shell onSignOut={() => onSignOut()} />
    </Console.Provider>
  )
}

const PAGES: { route: Route; label: string; match: Route['page'][] }[] = [
  { route: { page: 'services' }, label: 'Services', match: ['services', 'service'] },
  { route: { page: 'rollouts' }, label: 'Rollouts', match: ['rollouts'] },
  { route: { page: 'history', service: undefined }, label: 'History', match: ['history'] },
  { route: { page: 'routers' }, label: 'Routers', match: ['routers'] }
]

function Shell(props: { onSignOut: () => void }) {
  const { identity } = useConsole()
  const live = useLive()
  const route = useRoute()
  // Move focus to the new page's heading, so keyboard and screen reader users follow along
  // (before the page is painted: a click into the new page must not lose its focus to this).
  useLayoutEffect(() => {
    const heading = document.querySelector<HTMLElement>('main h1')
    heading?.setAttribute('tabindex', '-1')
    heading?.focus({ preventScroll: true })
  }, [route.page, route.page === 'service' ? route.name : ''])
  const connection = { connecting: 'connecting…', live: 'live', reconnecting: 'reconnecting…', failed: 'offline' }[live.connection]
  return (
    <>
      <a class="skip" href="#main" onClick={(event) => (event.preventDefault(), document.getElementById('main')?.focus())}>
        Skip to content
      </a>
      <header class="top">
        <span class="brand">switchyard</span>
        <nav aria-label="Pages">
          <ul>
            {PAGES.map((page) => (
              <li key={page.label}>
                <a href={href(page.route)} aria-current={page.match.includes(route.page) ? 'page' : undefined}>
                  {page.label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <div class="who">
          <span class={`conn conn-${live.connection}`} role="status" title={live.error}>
            {connection}
          </span>
          <span class="identity">
            {identity.name} <span class="badge">{identity.role}</span>
            {!mayChangeAnything(identity) && <span class="muted"> read-only</span>}
          </span>
          <button type="button" onClick={props.onSignOut}>
            Sign out
          </button>
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        {live.connection === 'failed' && (
          <p class="error" role="alert">
            Cannot reach the registry: {live.error}
          </p>
        )}
        <Page route={route} />
      </main>
    </>
  )
}

function Page(props: { route: Route }) {
  const { route } = props
  switch (route.page) {
    case 'services':
      return <ServicesPage />
    case 'service':
      return <ServicePage key={route.name} name={route.name} />
    case 'rollouts':
      return <RolloutsPage />
    case 'history':
      return <HistoryPage service={route.service} />
    case 'routers':
      return <RoutersPage />
  }
}
