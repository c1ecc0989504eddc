import { existsSync } from 'node:fs'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { benchReadme, resultsDir } from '../lib/paths.js'
import type { ProxySummary } from '../scenarios/proxy.js'
import type { BenchRun } from './bench-run.js'
import { renderMarkdown } from './markdown.js'
import { renderProxyChart } from './svg-chart.js'

export const README_START = '<!-- latest-full-run:start -->'
export const README_END = '<!-- latest-full-run:end -->'

export interface WrittenFiles {
  json: string
  markdown: string
  svg: string | undefined
  readmeUpdated: boolean
}

/** bench/results/<date>-<commit>[-quick].{json,md,svg}; a full run of every scenario also refreshes bench/README.md. */
export async function writeResults(run: BenchRun, options: { updateReadme: boolean; directory?: string }): Promise<WrittenFiles> {
  const directory = options.directory ?? resultsDir
  await mkdir(directory, { recursive: true })
  const stem = `${run.identity.startedAt.slice(0, 10)}-${run.identity.commit}${run.quick ? '-quick' : ''}`
  const json = join(directory, `${stem}.json`)
  const markdown = join(directory, `${stem}.md`)
  await writeFile(json, `${JSON.stringify(run, null, 2)}\n`)

  let svg: string | undefined
  const proxy = run.scenarios.find((scenario) => scenario.name === 'proxy' && !scenario.skipped)
  const summaries = (proxy?.data as { summaries?: ProxySummary[] } | undefined)?.summaries
  if (summaries && summaries.length > 0) {
    svg = join(directory, `${stem}.svg`)
    const data = proxy?.data as { connections: number; roundsPerConfiguration: number; secondsPerRound: number; fixedRate: { requestsPerSecond: number } }
    const subtitle = `${run.identity.startedAt.slice(0, 10)}, commit ${run.identity.commit}, ${run.machine.cores} cores ${run.machine.cpuModel}, Node.js ${run.machine.node}; ${data.connections} connections, ${data.roundsPerConfiguration} rounds x ${data.secondsPerRound} s; fixed rate ${data.fixedRate.requestsPerSecond} req/s`
    await writeFile(svg, renderProxyChart(summaries, subtitle))
  }
  const summary = renderMarkdown(run, svg ? basename(svg) : undefined)
  await writeFile(markdown, summary)

  let readmeUpdated = false
  if (options.updateReadme && existsSync(benchReadme)) {
    const readme = await readFile(benchReadme, 'utf8')
    const start = readme.indexOf(README_START)
    const end = readme.indexOf(README_END)
    if (start >= 0 && end > start) {
      // Links from the README point into results/.
      const section = summary
        .replace(/^# /, '### ')
        .replace(/^## /gm, '#### ')
        .replace(`](${svg ? basename(svg) : ''})`, `](results/${svg ? basename(svg) : ''})`)
      await writeFile(benchReadme, `${readme.slice(0, start + README_START.length)}\n${section}${readme.slice(end)}`)
      readmeUpdated = true
    }
  }
  return { json, markdown, svg, readmeUpdated }
}
