import t from 'tap'
import { asPromise } from '../../core/as-promise.js'

void t.test('asPromise: runs the work at once and resolves with its value', async (t) => {
  const calls: string[] = []
  const promise = asPromise(() => {
    calls.push('work')
    return 42
  })
  t.same(calls, ['work'], 'ran before the call returned')
  t.equal(await promise, 42)
})

void t.test('asPromise: a throw becomes a rejection, never a throw from the call', async (t) => {
  const failure = new Error('refused')
  let promise: Promise<never> | undefined
  t.doesNotThrow(() => {
    promise = asPromise(() => {
      throw failure
    })
  })
  await t.rejects(promise as Promise<never>, failure)
})
