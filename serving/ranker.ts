import { createMatrix } from '../infra/matrix';
import type { TextPriorSettings } from '../trainer';
import type { AnnIndex } from './ann';
import { TopK, dot64 } from './ann/topk';

/**
 * Ranks the catalog for one user the way the offline evaluation does: score = cosine(user
 * vector, item vector) + w x text prior, the prior being the text similarity of each item to the
 * history's last `lastItems` distinct items (max or mean pooled, the query items themselves at 0:
 * trainer/textPrior.ts). Exact: every item scored. With an HNSW model index the fused score is
 * not one inner product, so candidates come from the model index (around the user vector) and
 * from the text index (around each query item), and the union is scored exactly.
 */
export interface RankerOptions {
  /** `[N + 1, H]` item vectors, rows L2-normalised, row 0 padding. */
  readonly items: Float32Array;
  readonly hiddenSize: number;
  readonly itemCount: number;
  /** The model index over rows 1..N of `items`. */
  readonly index: AnnIndex;
  /** The tuned text prior with the item text vectors it reads (`[N + 1, D]`, rows L2-normalised) and their index. */
  readonly prior?: { readonly settings: TextPriorSettings; readonly table: Float32Array; readonly dims: number; readonly index: AnnIndex };
  /** Candidates taken from each index when the model index is approximate. */
  readonly candidates: number;
}

export interface RankedItems {
  readonly ids: Int32Array;
  readonly scores: Float64Array;
}

export class Ranker {
  /** Ids 1..N: what the exact path scores. */
  private readonly everyItem: Int32Array;

  constructor(private readonly options: RankerOptions) {
    this.everyItem = Int32Array.from({ length: options.itemCount }, (_, i) => i + 1);
  }

  /** Whether every item is scored (no candidate generation). */
  get exact(): boolean {
    return this.options.index.kind === 'exact';
  }

  /**
   * The top `k` items for a user vector `[H]` and the history the model read (dense ids, oldest
   * first), never padding nor an `exclude`d id.
   */
  rank(user: Float32Array, history: ArrayLike<number>, exclude: ReadonlySet<number>, k: number): RankedItems {
    const query = this.options.prior ? this.priorQuery(history) : undefined;
    const ids = this.exact ? this.everyItem : this.candidates(user, query, exclude, k);
    const scores = this.fusedScores(Float64Array.from(user), query, ids);
    const top = new TopK(k);
    ids.forEach((id, j) => {
      if (!exclude.has(id)) top.push(id, scores[j] as number);
    });
    return top.drain();
  }

  /**
   * The approximate path's candidates: `candidates` items around the user vector in the model
   * index and around each query item in the text index, without repeats.
   */
  private candidates(user: Float32Array, query: PriorQuery | undefined, exclude: ReadonlySet<number>, k: number): Int32Array {
    const want = Math.max(k, this.options.candidates);
    const union = new Set<number>();
    for (const hits of this.options.index.search(user, want, { exclude: [exclude] })) for (const id of hits.ids) union.add(id);
    const prior = this.options.prior;
    if (prior && query && query.count > 0) {
      for (const hits of prior.index.search(query.vectors, want, { exclude: Array.from({ length: query.count }, () => exclude) })) for (const id of hits.ids) union.add(id);
    }
    return Int32Array.from(union);
  }

  /**
   * The fused score of each of `ids`, in tight loops over the tables: model cosine (dot64 with the
   * item row) plus w x the pooled text prior (its best cosine over the pooled query vectors; 0 for
   * a query item).
   */
  private fusedScores(u: Float64Array, query: PriorQuery | undefined, ids: Int32Array): Float64Array {
    const { items, hiddenSize: H, prior } = this.options;
    const scores = new Float64Array(ids.length);
    for (let j = 0; j < ids.length; j++) scores[j] = dot64(u, items, ids[j] as number, H);
    if (!prior || !query || query.pooled.length === 0) return scores;
    const best = new Float64Array(ids.length).fill(Number.NEGATIVE_INFINITY);
    for (const q of query.pooled) {
      for (let j = 0; j < ids.length; j++) {
        const c = dot64(q, prior.table, ids[j] as number, prior.dims);
        if (c > (best[j] as number)) best[j] = c;
      }
    }
    const w = prior.settings.weight;
    for (let j = 0; j < ids.length; j++) if (!query.items.has(ids[j] as number)) scores[j] = (scores[j] as number) + w * (best[j] as number);
    return scores;
  }

  /**
   * The prior's query: the last `lastItems` distinct items of the history, latest first, as text
   * vectors `[Q, D]` (what the text index is searched with), the vectors the prior pools over
   * (each of them for max, their mean for mean), and the query items (whose prior is 0).
   */
  private priorQuery(history: ArrayLike<number>): PriorQuery {
    const prior = this.options.prior as NonNullable<RankerOptions['prior']>;
    const { lastItems, pooling } = prior.settings;
    const D = prior.dims;
    const picked: number[] = [];
    for (let t = history.length - 1; t >= 0 && picked.length < lastItems; t--) {
      const id = history[t] as number;
      if (id !== 0 && !picked.includes(id)) picked.push(id);
    }
    const vectors = new Float32Array(picked.length * D);
    picked.forEach((id, j) => vectors.set(prior.table.subarray(id * D, (id + 1) * D), j * D));
    let pooled: Float64Array[];
    if (pooling === 'mean') {
      const mean = new Float64Array(D);
      for (const id of picked) for (let d = 0; d < D; d++) (mean[d] as number) += (prior.table[id * D + d] as number) / picked.length;
      pooled = [mean];
    } else {
      pooled = picked.map((id) => Float64Array.from(prior.table.subarray(id * D, (id + 1) * D)));
    }
    return { vectors, count: picked.length, pooled, items: new Set(picked) };
  }
}

interface PriorQuery {
  readonly vectors: Float32Array;
  readonly count: number;
  readonly pooled: Float64Array[];
  readonly items: ReadonlySet<number>;
}

/** Rows 1..N of a `[N + 1, D]` table as a `[N, D]` matrix (what an index is built from; row r is id r + 1). */
export function withoutPadding(table: Float32Array, dims: number): ReturnType<typeof createMatrix> {
  const rows = table.length / dims - 1;
  return createMatrix(rows, dims, table.subarray(dims));
}
