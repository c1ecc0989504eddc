import t from 'tap'
import { pickEndpoint, type BalancedEndpoint } from '../../core/instance-picker.js'

interface TestEndpoint extends BalancedEndpoint {
  name: string
}

const NOW = 1_000

/** Endpoints named a, b, c...: `inflight` per endpoint, `ejected` names kept out until after NOW. */
function endpoints(inflight: readonly number[], ejected: readonly string[] = []): TestEndpoint[] {
  return inflight.map((count, i) => {
    const name = String.fromCharCode(97 + i)
    return { name, inflight: count, ejectedUntil: ejected.includes(name) ? NOW + 1 : 0 }
  })
}

/** Hands out `values` in order and fails on a draw the test did not script. */
function scripted(values: readonly number[]): { random: () => number; draws: () => number } {
  let next = 0
  return {
    random: () => {
      if (next >= values.length) throw new Error(`draw ${next + 1} was not scripted`)
      return values[next++] as number
    },
    draws: () => next
  }
}

void t.test('power of two choices: exact picks for scripted draws', (t) => {
  const cases: [string, TestEndpoint[], number[], string | undefined, string | undefined][] = [
    // [what, endpoints, random draws, excluded name, expected]
    ['no endpoints', endpoints([]), [], undefined, undefined],
    ['one endpoint: no draw', endpoints([9]), [], undefined, 'a'],
    ['one endpoint, ejected: still it, nothing else exists', endpoints([0], ['a']), [], undefined, 'a'],
    ['one endpoint, excluded: nothing', endpoints([0]), [], 'a', undefined],
    ['a then b: the less busy (a)', endpoints([1, 3]), [0, 0], undefined, 'a'],
    ['b then a: the less busy (a)', endpoints([1, 3]), [0.6, 0], undefined, 'a'],
    ['a tie goes to the first drawn', endpoints([2, 2]), [0.6, 0], undefined, 'b'],
    ['second draw skips the first: b then c', endpoints([5, 4, 3]), [0.5, 0.5], undefined, 'c'],
    ['second draw below the first: c then b', endpoints([5, 1, 3]), [0.9, 0.9], undefined, 'b'],
    ['the first drawn is ejected', endpoints([0, 9], ['a']), [0, 0], undefined, 'b'],
    ['the second drawn is ejected', endpoints([9, 0], ['b']), [0, 0], undefined, 'a'],
    ['the second drawn is excluded', endpoints([9, 0]), [0, 0], 'b', 'a'],
    ['the first drawn is excluded', endpoints([0, 9]), [0, 0], 'a', 'b'],
    ['both unusable: a scan from the first finds a healthy one', endpoints([0, 0, 7], ['a']), [0, 0], 'b', 'c'],
    ['both unusable, the scan wraps around', endpoints([0, 0, 0, 0], ['c', 'd']), [0.5, 0.7], 'b', 'a'],
    ['everything ejected: the first one the scan met', endpoints([0, 0, 0], ['a', 'b', 'c']), [0.5, 0.9], undefined, 'b'],
    ['the excluded one and an ejected one: the ejected one', endpoints([0, 0], ['b']), [0, 0], 'a', 'b']
  ]
  for (const [what, list, draws, excluded, expected] of cases) {
    const random = scripted(draws)
    const exclude = list.find((endpoint) => endpoint.name === excluded)
    t.equal(pickEndpoint(list, NOW, random.random, exclude)?.name, expected, what)
    t.equal(random.draws(), draws.length, `${what}: ${draws.length} draws`)
  }
  t.end()
})

void t.test('an ejection ends at its timestamp', (t) => {
  const [a, b] = endpoints([0, 5]) as [TestEndpoint, TestEndpoint]
  a.ejectedUntil = NOW
  t.equal(pickEndpoint([a, b], NOW, scripted([0, 0]).random)?.name, 'a', 'ejectedUntil = now: back in')
  a.ejectedUntil = NOW + 1
  t.equal(pickEndpoint([a, b], NOW, scripted([0, 0]).random)?.name, 'b', 'ejectedUntil = now + 1: still out')
  t.end()
})
