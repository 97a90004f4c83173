import type { SequenceBatch } from '../trainer';
import type { UserEncoder } from './onnx';

interface Waiting {
  readonly batch: SequenceBatch;
  readonly resolve: (vectors: Float32Array) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * A {@link UserEncoder} that encodes the batches of concurrent requests together: batches asked
 * for in the same event-loop turn (up to `maxRows` rows) go to the engine as one batch, and each
 * caller gets its own rows' vectors. Under load one engine call then serves several requests
 * (an ONNX session run costs about the same for 1 row as for a few); alone, a request waits for
 * nothing but the end of the current turn.
 *
 * Batches of different `maxLength` are never merged (each goes alone). An engine failure fails
 * every caller of that call.
 */
export class CoalescingEncoder implements UserEncoder {
  private waiting: Waiting[] = [];
  private rowsWaiting = 0;
  /** Engine calls made, and the caller batches they served (for tests and metrics). */
  calls = 0;
  batches = 0;

  constructor(
    /** The engine itself. */
    readonly inner: UserEncoder,
    private readonly maxRows = 64,
  ) {}

  get kind(): UserEncoder['kind'] {
    return this.inner.kind;
  }
  get itemCount(): number {
    return this.inner.itemCount;
  }
  get hiddenSize(): number {
    return this.inner.hiddenSize;
  }
  get maxHistoryLength(): number {
    return this.inner.maxHistoryLength;
  }

  encode(batch: SequenceBatch): Promise<Float32Array> {
    if (batch.size >= this.maxRows || batch.maxLength !== this.inner.maxHistoryLength) return this.run([batch]).then(([vectors]) => vectors as Float32Array);
    return new Promise((resolve, reject) => {
      if (this.waiting.length === 0) setImmediate(() => this.flush());
      this.waiting.push({ batch, resolve, reject });
      this.rowsWaiting += batch.size;
      if (this.rowsWaiting >= this.maxRows) this.flush();
    });
  }

  dispose(): Promise<void> {
    return this.inner.dispose();
  }

  private flush(): void {
    const waiting = this.waiting;
    if (waiting.length === 0) return;
    this.waiting = [];
    this.rowsWaiting = 0;
    this.run(waiting.map((w) => w.batch)).then(
      (vectors) => waiting.forEach((w, i) => w.resolve(vectors[i] as Float32Array)),
      (error: unknown) => waiting.forEach((w) => w.reject(error)),
    );
  }

  /** One engine call for `batches` (same maxLength): each batch's `[B * H]` vectors. */
  private async run(batches: readonly SequenceBatch[]): Promise<Float32Array[]> {
    this.calls++;
    this.batches += batches.length;
    if (batches.length === 1) return [await this.inner.encode(batches[0] as SequenceBatch)];
    const L = (batches[0] as SequenceBatch).maxLength;
    const size = batches.reduce((n, b) => n + b.size, 0);
    const items = new Int32Array(size * L);
    const lengths = new Int32Array(size);
    let row = 0;
    for (const b of batches) {
      items.set(b.items, row * L);
      lengths.set(b.lengths, row);
      row += b.size;
    }
    const vectors = await this.inner.encode({ size, maxLength: L, items, lengths, targets: new Int32Array(size) });
    const H = this.inner.hiddenSize;
    const out: Float32Array[] = [];
    row = 0;
    for (const b of batches) {
      out.push(vectors.slice(row * H, (row + b.size) * H));
      row += b.size;
    }
    return out;
  }
}
