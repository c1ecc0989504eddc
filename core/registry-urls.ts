/**
 * The registry URLs a client is given, `http://a:8761,http://b:8761`: replicas of one
 * registry, tried in this order. Each must be an http(s) origin: the clients call
 * /v1/... at its root, and a token belongs in SWITCHYARD_TOKEN, never in a URL (logs show URLs).
 * Throws naming the first entry that is not one; returns the origins otherwise.
 */
export function parseRegistryUrls(text: string): string[] {
  const entries = text.split(',').map((entry) => entry.trim())
  const urls: string[] = []
  for (const [index, entry] of entries.entries()) {
    const named = `registry URL ${JSON.stringify(redacted(entry))}${entries.length > 1 ? ` (entry ${index + 1} of ${JSON.stringify(redacted(text))})` : ''}`
    const problem = urlProblem(entry)
    if (problem) throw new Error(`${named} ${problem}`)
    const origin = new URL(entry).origin
    if (urls.includes(origin)) throw new Error(`${named} is listed twice`)
    urls.push(origin)
  }
  return urls
}

/** The text with any user:password@ masked: problems end up in logs. */
function redacted(text: string): string {
  return text.replace(/\/\/[^/@,\s]*@/g, '//***@')
}

function urlProblem(entry: string): string | undefined {
  if (entry === '') return 'is empty: give URLs separated by commas, e.g. http://a:8761,http://b:8761'
  let url: URL
  try {
    url = new URL(entry)
  } catch {
    return 'is not a URL: give http://HOST:PORT'
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return `has scheme ${url.protocol.slice(0, -1)}: give http:// or https://`
  if (url.username !== '' || url.password !== '') return 'carries credentials: give the token in SWITCHYARD_TOKEN (or --token) instead'
  if (url.pathname !== '/' || url.search !== '' || url.hash !== '') return 'has a path, query or fragment: give only http(s)://HOST:PORT (the API is at the root)'
  return undefined
}
