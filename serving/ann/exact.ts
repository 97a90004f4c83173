import path from 'node:path';
import { ArtifactError } from '../../errors';
import { writeDurably } from '../../infra/artifacts';
import type { Matrix } from '../../infra/matrix';
import { encodeNpy } from '../../infra/npy';
import { initTf, tf } from '../../infra/tf';
import type { AnnHits, AnnIndex, AnnSaveOptions, AnnSearchOptions } from './annIndex';
import { RowsIndex } from './rowsIndex';
import { openIndexDir, saveIndexDir, type AnnManifest } from './manifest';
import { RESCORE_MARGIN, VectorRows, checkDims, denseIds, excludedPresent, queryRow } from './rows';
import { TopK, dot64 } from './topk';

/**
 * Exact search: every item is scored and the best `k` kept. The reference the approximate indexes
 * are measured against, and the index for catalogs small enough to score in full per request.
 *
 * Two scorers give the same hits and scores:
 * - `js`: typed-array loops, float64 sums (`dot64`) into a bounded heap. No tensor work; the
 *   faster one for a single query over a small catalog.
 * - `tf`: one TF.js matMul `[B, D] x [N, D]^T` and topk over a few more than `k` rows per query
 *   (float32; `k` + excluded + `RESCORE_MARGIN`), then those candidates are rescored with `dot64` and reordered. The faster one for
 *   batches and for large catalogs (the native backend runs the product on every core).
 * `auto` (the default) uses `tf` once `B * N` reaches {@link TF_FROM_WORK}.
 */

export type ExactScorer = 'auto' | 'js' | 'tf';

export interface ExactIndexOptions {
  /** Which scorer runs (default `auto`); forcing one is for tests and benchmarks. */
  readonly scorer?: ExactScorer;
}

/**
 * `auto` scores with TF.js from this many query-item pairs (`B * N`) on. Below it the JS loop is
 * as fast or faster (no tensor upload, no native call); see serving/ann/README.md.
 */
export const TF_FROM_WORK = 2048;

/** Most scores `[B, N]` one TF.js product materialises (queries are chunked to stay under it). */
const MAX_SCORES_PER_CHUNK = 1 << 24;

export class ExactIndex extends RowsIndex implements AnnIndex {
  readonly kind = 'exact' as const;
  private items: tf.Tensor2D | undefined; // [size, D], built on the first tf search, dropped on add

  private constructor(
    rows: VectorRows,
    private readonly scorer: ExactScorer,
  ) {
    super(rows);
  }

  /** An exact index over `vectors` `[N, D]` (row r is item r + 1). Initialises TF.js. */
  static async build(vectors: Matrix, options: ExactIndexOptions = {}): Promise<ExactIndex> {
    await initTf();
    const rows = new VectorRows(checkDims(vectors, 'ExactIndex.build'), vectors.rows);
    rows.append(rows.checkNew(denseIds(vectors.rows), vectors, 'ExactIndex.build'), vectors.data);
    return new ExactIndex(rows, options.scorer ?? 'auto');
  }

  /** Reopens an index saved by {@link save}; a missing, truncated, corrupt or other-kind directory is an ArtifactError. */
  static async load(dir: string, options: ExactIndexOptions = {}): Promise<ExactIndex> {
    await initTf();
    const opened = await openIndexDir(dir);
    if (opened.manifest.kind !== 'exact') {
      throw new ArtifactError(`${opened.dir} holds a ${opened.manifest.kind} index, expected exact`, { context: { path: opened.dir } });
    }
    return new ExactIndex(opened.rows, options.scorer ?? 'auto');
  }

  search(queries: Matrix | Float32Array, k: number, options?: AnnSearchOptions): AnnHits[] {
    const where = 'ExactIndex.search';
    const { data, batch, exclude } = this.checkedSearch(where, queries, k, options);
    if (batch === 0) return [];
    if (k === 0 || this.size === 0) return Array.from({ length: batch }, () => ({ ids: new Int32Array(0), scores: new Float64Array(0) }));
    const useTf = this.scorer === 'tf' || (this.scorer === 'auto' && batch * this.size >= TF_FROM_WORK);
    return useTf ? this.searchTf(data, batch, k, exclude) : this.searchJs(data, batch, k, exclude);
  }

  add(ids: ArrayLike<number>, vectors: Matrix): void {
    this.checkLive('ExactIndex.add');
    const checked = this.rows.checkNew(ids, vectors, 'ExactIndex.add');
    this.rows.append(checked, vectors.data);
    this.items?.dispose();
    this.items = undefined;
  }

  async save(dir: string, options: AnnSaveOptions = {}): Promise<AnnManifest> {
    this.checkLive('ExactIndex.save');
    return saveIndexDir(dir, options.createdBy ?? 'serving.ann', async (staging) => {
      const { size, dims } = this; // one synchronous snapshot: an add() meanwhile cannot split count and data
      const vectors = this.rows.vectors.slice();
      const ids = this.rows.ids.slice();
      await writeDurably(path.join(staging, 'vectors.npy'), encodeNpy(vectors, [size, dims]));
      await writeDurably(path.join(staging, 'ids.npy'), encodeNpy(ids, [size]));
      return { draft: { kind: 'exact', dims, count: size }, names: ['vectors.npy', 'ids.npy'] };
    });
  }

  dispose(): void {
    this.items?.dispose();
    this.items = undefined;
    this.disposed = true;
  }

  /** Every row scored in JS, kept in a bounded heap (excluded ids skipped). */
  private searchJs(data: Float32Array, batch: number, k: number, exclude: Array<ReadonlySet<number> | undefined>): AnnHits[] {
    const { dims, size } = this;
    const storage = this.rows.storage;
    const ids = this.rows.ids;
    const q = new Float64Array(dims);
    const out: AnnHits[] = [];
    for (let b = 0; b < batch; b++) {
      queryRow(data, b, dims, q);
      const excluded = exclude[b];
      const top = new TopK(Math.min(k, size));
      for (let r = 0; r < size; r++) {
        const s = dot64(q, storage, r, dims);
        const id = ids[r] as number;
        if (!top.accepts(s, id) || excluded?.has(id)) continue;
        top.push(id, s);
      }
      out.push(top.drain());
    }
    return out;
  }

  /** TF.js product and topk for candidates (float32), then rescored and reordered with `dot64`. */
  private searchTf(data: Float32Array, batch: number, k: number, exclude: Array<ReadonlySet<number> | undefined>): AnnHits[] {
    const { dims, size } = this;
    let extra = 0;
    for (const e of exclude) extra = Math.max(extra, excludedPresent(this.rows, e));
    const candidates = Math.min(size, k + extra + RESCORE_MARGIN);
    const items = this.itemTensor(); // [N, D]
    const chunk = Math.max(1, Math.floor(MAX_SCORES_PER_CHUNK / size));
    const storage = this.rows.storage;
    const ids = this.rows.ids;
    const q = new Float64Array(dims);
    const out: AnnHits[] = [];
    for (let start = 0; start < batch; start += chunk) {
      const rowsHere = Math.min(chunk, batch - start);
      const indices = tf.tidy(() => {
        const queries = tf.tensor2d(data.subarray(start * dims, (start + rowsHere) * dims), [rowsHere, dims]); // [b, D]
        const scores = tf.matMul(queries, items, false, true); // [b, N]
        return tf.topk(scores, candidates, true).indices; // [b, candidates]
      });
      const rowIndex = indices.dataSync() as Int32Array; // [b * candidates]
      indices.dispose();
      for (let b = 0; b < rowsHere; b++) {
        queryRow(data, start + b, dims, q);
        const excluded = exclude[start + b];
        const top = new TopK(Math.min(k, size));
        for (let c = 0; c < candidates; c++) {
          const r = rowIndex[b * candidates + c] as number;
          const id = ids[r] as number;
          if (excluded?.has(id)) continue;
          top.push(id, dot64(q, storage, r, dims));
        }
        out.push(top.drain());
      }
    }
    return out;
  }

  private itemTensor(): tf.Tensor2D {
    // A view, not a copy: rows below size never change (add() writes past them, then drops this tensor).
    this.items ??= tf.tensor2d(this.rows.vectors, [this.size, this.dims]);
    return this.items;
  }

}
