import { fileURLToPath } from 'node:url'

/** The project root, from dist/bench/lib (compiled) or bench/lib (sources): both are two levels below a folder in the root. */
const here = fileURLToPath(new URL('.', import.meta.url))
export const projectRoot = here.includes('/dist/bench/') ? fileURLToPath(new URL('../../../', import.meta.url)) : fileURLToPath(new URL('../../', import.meta.url))
export const resultsDir = `${projectRoot}bench/results`
export const benchReadme = `${projectRoot}bench/README.md`
