/**
 * Cuts a streamed answer of the etcd gateway (watch, lease keepalive) into its JSON
 * objects. The gateway writes one object per message, newline-delimited, but TCP and
 * HTTP chunking cut wherever they like: an object, a string or a multi-byte character may
 * end in the next chunk. Objects are found by brace depth outside strings, so the cut
 * needs no delimiter at all.
 */
export class JsonObjectSplitter {
  private readonly decoder = new TextDecoder('utf-8')
  private text = ''
  /** where scanning resumes in `text` */
  private scanned = 0
  private depth = 0
  private inString = false
  private escaped = false

  /** the objects completed by this chunk, parsed, in order */
  push(chunk: Uint8Array | string): unknown[] {
    this.text += typeof chunk === 'string' ? chunk : this.decoder.decode(chunk, { stream: true })
    const objects: unknown[] = []
    let start = 0
    for (let index = this.scanned; index < this.text.length; index++) {
      const char = this.text[index]
      if (this.inString) {
        if (this.escaped) this.escaped = false
        else if (char === '\\') this.escaped = true
        else if (char === '"') this.inString = false
      } else if (char === '"') {
        this.inString = true
      } else if (char === '{') {
        if (this.depth === 0) start = index
        this.depth++
      } else if (char === '}') {
        this.depth--
        if (this.depth === 0) {
          objects.push(JSON.parse(this.text.slice(start, index + 1)))
          start = index + 1
        } else if (this.depth < 0) {
          throw new SyntaxError('unbalanced } in the stream')
        }
      } else if (this.depth === 0 && char !== undefined && !/\s/.test(char)) {
        throw new SyntaxError(`unexpected ${JSON.stringify(char)} between objects in the stream`)
      }
    }
    // keep only the unfinished object (or nothing)
    if (this.depth === 0) {
      this.text = ''
      this.scanned = 0
    } else {
      this.text = this.text.slice(start)
      this.scanned = this.text.length
    }
    return objects
  }

  /** bytes of an object begun but not finished (a stream that ends here was cut) */
  get pending(): boolean {
    return this.depth > 0 || this.text.trim().length > 0
  }
}
