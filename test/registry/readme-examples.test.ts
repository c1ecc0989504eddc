import { readFile } from 'node:fs/promises'
import t from 'tap'
import { startTestRegistry, type TOKENS } from '../helpers/registry-harness.js'

interface Exchange {
  method: string
  path: string
  headers: Record<string, string>
  body: string | undefined
  status: number
  expected: unknown
  source: string
}

/** The README's ```http blocks: a request, a blank line, then `HTTP <status>` and the JSON answer. */
function parseExamples(markdown: string): Exchange[] {
  const blocks = [...markdown.matchAll(/```http\n([\s\S]*?)```/g)].map((match) => match[1] as string)
  return blocks.map((block) => {
    const statusAt = block.search(/^HTTP \d{3}$/m)
    const request = block.slice(0, statusAt).trim().split('\n')
    const response = block.slice(statusAt).trim().split('\n')
    const [method, path] = (request.shift() as string).split(' ') as [string, string]
    const headers: Record<string, string> = {}
    while (request.length > 0 && request[0] !== '') {
      const line = request.shift() as string
      const colon = line.indexOf(':')
      headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim()
    }
    const body = request.join('\n').trim()
    const status = Number((response.shift() as string).slice(5))
    const answer = response.join('\n').trim()
    return { method, path, headers, body: body === '' ? undefined : body, status, expected: answer === '' ? undefined : JSON.parse(answer), source: block }
  })
}

/** Equal, except that the string "..." in the expectation matches any value. */
function matches(actual: unknown, expected: unknown): boolean {
  if (expected === '...') return true
  if (Array.isArray(expected)) return Array.isArray(actual) && actual.length === expected.length && expected.every((item, i) => matches(actual[i], item))
  if (typeof expected === 'object' && expected !== null) {
    if (typeof actual !== 'object' || actual === null || Array.isArray(actual)) return false
    const keys = Object.keys(expected)
    return keys.length === Object.keys(actual).length && keys.every((key) => matches((actual as Record<string, unknown>)[key], (expected as Record<string, unknown>)[key]))
  }
  return actual === expected
}

void t.test('every API example in the README is what the registry answers', async (t) => {
  const readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8')
  const examples = parseExamples(readme)
  t.ok(examples.length >= 10, `the README has ${examples.length} examples`)
  const reg = await startTestRegistry()
  t.teardown(reg.destroy)
  const tokenNames: Record<string, keyof typeof TOKENS> = { $SWITCHYARD_TOKEN: 'admin', $READER_TOKEN: 'reader' }
  for (const example of examples) {
    const { authorization, ...headers } = example.headers
    const token = authorization === undefined ? null : tokenNames[authorization.replace(/^Bearer /, '')]
    t.not(token, undefined, `known token in ${example.method} ${example.path}`)
    const answer = await reg.call(example.method, example.path, { token: token ?? null, headers, ...(example.body === undefined ? {} : { rawBody: example.body }) })
    t.equal(answer.status, example.status, `${example.method} ${example.path} -> ${example.status}`)
    t.ok(matches(answer.json, example.expected), `${example.method} ${example.path} answers as documented`, { actual: answer.json, expected: example.expected })
  }
})
