import type { Matrix } from '../../infra/matrix';
import type { AnnManifest } from './manifest';

/**
 * Candidate generation for serving: the items whose vectors have the largest inner product with a
 * user vector. Both sides are L2-normalised by the caller, so the inner product is the cosine the
 * model ranks by.
 *
 * Items are keyed by integer ids >= 1 (the catalog's dense ids; 0 is padding and is never
 * stored nor returned). An index built from a matrix `[N, D]` holds ids 1..N (row r is id r + 1);
 * {@link AnnIndex.add} adds items published later under new ids.
 *
 * Every implementation scores with the same function (float32 vectors, products summed in
 * float64: `topk.ts` `dot64`) and orders hits by score descending, then id ascending, so equal
 * scores come back lower id first and two implementations that find the same items return them
 * in the same order with the same scores. Implementations: {@link ExactIndex} (the reference) and
 * {@link HnswIndex}; {@link createAnnIndex} chooses, {@link loadAnnIndex} reopens a saved one.
 */

export type AnnKind = 'exact' | 'hnsw';

/** Ids to leave out of one query's hits (e.g. the items the user already has). */
export type AnnExclusion = ReadonlySet<number> | ArrayLike<number>;

export interface AnnSearchOptions {
  /**
   * One entry per query (length B; `undefined` for a query without exclusions). Excluded ids are
   * never returned, and a query still gets `k` hits when at least `k` other items are indexed.
   * Ids that are not in the index are ignored.
   */
  readonly exclude?: ReadonlyArray<AnnExclusion | undefined>;
  /**
   * HNSW: size of the candidate list for this call (larger: better recall, slower); defaults to
   * the index's own `ef`. Never below the number of hits asked for. The exact index ignores it.
   */
  readonly ef?: number;
  /**
   * HNSW: `false` returns the graph's own `k` nearest (best first by its float32 inner products,
   * which are the `scores`) without the extra neighbours it otherwise asks for and rescores
   * exactly: for a caller that scores the hits itself (the ranker). Default true. The exact
   * index ignores it.
   */
  readonly rescore?: boolean;
}

/** The hits of one query, best first: `ids` `[n]` and their inner products `scores` `[n]`, n <= k. */
export interface AnnHits {
  readonly ids: Int32Array;
  readonly scores: Float64Array;
}

export interface AnnSaveOptions {
  /** What wrote the index (a job or command name), recorded in the manifest. */
  readonly createdBy?: string;
}

export interface AnnIndex {
  readonly kind: AnnKind;
  /** Vector width D. */
  readonly dims: number;
  /** Items indexed. */
  readonly size: number;
  /**
   * The same object for holders of one shared index (handles from an `AnnIndexCache`),
   * absent otherwise: what depends only on the index and the vectors it was built from (the
   * ranker's text-neighbour lists) can be shared between its holders.
   */
  readonly identity?: object;

  /**
   * The top-`k` items for each query. `queries` is a `Matrix` `[B, D]` or a row-major
   * Float32Array `[B * D]`; the result has B entries (none for an empty batch), each with
   * `min(k, size - excluded)` hits. Throws a ValidationError when the width is not `dims`, a value
   * is not finite, `k` is not a non-negative integer or `exclude` has not B entries.
   */
  search(queries: Matrix | Float32Array, k: number, options?: AnnSearchOptions): AnnHits[];

  /**
   * Adds items: `ids` `[n]`, `vectors` `[n, D]`. Each id must be an integer >= 1 that the index
   * does not hold (new catalog items take the next ids; gaps are allowed). Re-adding an id is a
   * ValidationError: an item's vector changes only with a new model, which rebuilds the index.
   * Nothing is added when any id or vector is invalid.
   */
  add(ids: ArrayLike<number>, vectors: Matrix): void;

  /** Whether the index holds item `id`. */
  has(id: number): boolean;

  /**
   * Writes the index to `dir` (created; an earlier index there is replaced): data files, then a
   * `manifest.json` with kind, dims, count, settings and every file's size and sha256. Staged
   * beside `dir` and renamed into place, so `dir` never holds a half-written index.
   */
  save(dir: string, options?: AnnSaveOptions): Promise<AnnManifest>;

  /** Releases native memory and tensors; the index is unusable afterwards. */
  dispose(): void;
}
