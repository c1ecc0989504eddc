/**
 * The command line every benchmark server takes, `PORT [VERSION [ID]]`; a missing or bad
 * port prints `usage` and exits 2.
 */
export function serverArgs(usage: string): { port: number; version: string; id: string } {
  const port = Number(process.argv[2])
  if (!Number.isInteger(port) || port <= 0) {
    process.stderr.write(`usage: ${usage}\n`)
    process.exit(2)
  }
  return { port, version: process.argv[3] ?? 'v1', id: process.argv[4] ?? 'api-1' }
}
