import type { SequenceBatch } from '../trainer';
import { Coalescer } from './coalesce';
import type { UserEncoder } from './onnx';

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
  private readonly coalescer: Coalescer<SequenceBatch, Float32Array>;

  constructor(
    /** The engine itself. */
    readonly inner: UserEncoder,
    maxRows = 64,
  ) {
    this.coalescer = new Coalescer((batches) => this.run(batches), (batch) => batch.size, maxRows, (batch) => batch.maxLength === inner.maxHistoryLength);
  }

  /** Engine calls made, and the caller batches they served (for tests and metrics). */
  get calls(): number {
    return this.coalescer.calls;
  }
  get batches(): number {
    return this.coalescer.inputs;
  }

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
    return this.coalescer.submit(batch);
  }

  dispose(): Promise<void> {
    return this.inner.dispose();
  }

  /** One engine call for `batches` (same maxLength): each batch's `[B * H]` vectors. */
  private async run(batches: readonly SequenceBatch[]): Promise<Float32Array[]> {
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
