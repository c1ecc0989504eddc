/** Progress on stderr (stdout carries only the result table). */
const started = Date.now()

export function progress(scenario: string, message: string): void {
  const elapsed = ((Date.now() - started) / 1000).toFixed(1).padStart(6)
  process.stderr.write(`[bench +${elapsed}s] ${scenario}: ${message}\n`)
}
