import { readdir, readFile } from 'node:fs/promises'
import t from 'tap'
import type { TSchema } from '@sinclair/typebox'
import { SETTINGS_TABLES, updateReadme } from '../cli/readme-tables.js'
import { settingMeta } from '../core/config.js'
import { ErrorCodes } from '../core/errors.js'

// Read at run time: codes and settings added later are held to the same rule.
const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8')

void t.test('every error code of core/errors.ts is in the README', (t) => {
  for (const code of Object.keys(ErrorCodes)) t.ok(readme.includes(`\`${code}\``), code)
  t.end()
})

void t.test("every setting's env variable is in the README", (t) => {
  for (const { name, schema } of SETTINGS_TABLES)
    for (const setting of Object.values(schema.properties) as TSchema[]) t.ok(readme.includes(`\`${settingMeta(setting).env}\``), `${name}: ${settingMeta(setting).env}`)
  t.end()
})

void t.test('the generated tables are up to date (npm run docs:readme rewrites them)', (t) => {
  t.equal(updateReadme(readme), readme)
  t.end()
})

void t.test('the layout names every source folder and every sample service', async (t) => {
  const layout = readme.slice(readme.indexOf('## Layout'))
  const tsconfig = JSON.parse(await readFile(new URL('../tsconfig.json', import.meta.url), 'utf8')) as { include: string[] }
  for (const folder of tsconfig.include) t.match(layout, new RegExp(`^${folder}/ `, 'm'), `${folder}/`)
  const samples = await readdir(new URL('../sample-services/', import.meta.url), { withFileTypes: true })
  for (const sample of samples.filter((entry) => entry.isDirectory())) t.match(layout, new RegExp(sample.name.replace('-', '[ -]')), sample.name)
})
