/**
 * A word list looked up by word, kept as the UTF-8 bytes of its lines and two typed arrays (line
 * starts; an open-addressing hash table of rows) instead of a `Map` of JS strings: a 400,000-word
 * GloVe vocabulary is then a handful of objects, not 400,000 strings and a map the garbage
 * collector marks at every full collection of a server that holds it (measured: a third of the
 * serving process's heap objects were GloVe words).
 */
export class Vocabulary {
  /** Rows (lines). */
  readonly size: number;
  private readonly starts: Uint32Array;
  private readonly slots: Int32Array;
  private readonly mask: number;

  /**
   * `bytes`: the words, one per line, each line ended by `\n` (line i = row i). A word listed twice
   * maps to its first row.
   */
  constructor(private readonly bytes: Buffer) {
    let rows = 0;
    for (let at = bytes.indexOf(10); at !== -1; at = bytes.indexOf(10, at + 1)) rows++;
    if (bytes.length > 0 && bytes[bytes.length - 1] !== 10) throw new RangeError('vocabulary: the last line has no newline');
    this.size = rows;
    this.starts = new Uint32Array(rows + 1);
    for (let r = 0, at = 0; r < rows; r++) {
      this.starts[r] = at;
      at = bytes.indexOf(10, at) + 1;
    }
    this.starts[rows] = bytes.length;
    let capacity = 16;
    while (capacity < rows * 2) capacity *= 2;
    this.mask = capacity - 1;
    this.slots = new Int32Array(capacity).fill(-1);
    for (let r = 0; r < rows; r++) {
      const start = this.starts[r] as number;
      const end = (this.starts[r + 1] as number) - 1;
      let slot = hashBytes(bytes, start, end) & this.mask;
      for (;;) {
        const held = this.slots[slot] as number;
        if (held === -1) {
          this.slots[slot] = r;
          break;
        }
        if (this.equal(held, bytes, start, end)) break; // a repeat: the first row keeps the word
        slot = (slot + 1) & this.mask;
      }
    }
  }

  /** The first row of `word`, or undefined. */
  get(word: string): number | undefined {
    const key = Buffer.from(word, 'utf8');
    if (key.includes(10)) return undefined;
    for (let slot = hashBytes(key, 0, key.length) & this.mask; ; slot = (slot + 1) & this.mask) {
      const row = this.slots[slot] as number;
      if (row === -1) return undefined;
      if (this.equal(row, key, 0, key.length)) return row;
    }
  }

  /** The word of `row`, or undefined outside 0..size-1. */
  word(row: number): string | undefined {
    if (!Number.isInteger(row) || row < 0 || row >= this.size) return undefined;
    return this.bytes.toString('utf8', this.starts[row], (this.starts[row + 1] as number) - 1);
  }

  private equal(row: number, other: Buffer, start: number, end: number): boolean {
    const from = this.starts[row] as number;
    const to = (this.starts[row + 1] as number) - 1;
    return to - from === end - start && this.bytes.compare(other, start, end, from, to) === 0;
  }
}

/** FNV-1a over `bytes[start..end)`. */
function hashBytes(bytes: Uint8Array, start: number, end: number): number {
  let h = 0x811c9dc5;
  for (let i = start; i < end; i++) {
    h ^= bytes[i] as number;
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
