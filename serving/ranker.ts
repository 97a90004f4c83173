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
  constructor(private readonly options: RankerOptions) {}

  /** Whether every item is scored (no candidate generation). */
  get exact(): boolean {
    return this.options.index.kind === 'exact';
  }

  /**
   * The top `k` items for a user vector `[H]` and the history the model read (dense ids, oldest
   * first), never padding nor an `exclude`d id.
   */
  rank(user: Float32Array, history: ArrayLike<number>, exclude: ReadonlySet<number>, k: number): RankedItems {
    const { items, hiddenSize: H, itemCount: N, prior } = this.options;
    const u = Float64Array.from(user);
    const query = prior ? this.priorQuery(history) : undefined;
    const top = new TopK(k);
    const score = (id: number): number => dot64(u, items, id, H) + (query ? (prior as NonNullable<typeof prior>).settings.weight * this.priorOf(id, query) : 0);
    if (this.exact) {
      const scores = this.allScores(u, query);
      for (let id = 1; id <= N; id++) if (!exclude.has(id)) top.push(id, scores[id] as number);
      return top.drain();
    }
    const want = Math.max(k, this.options.candidates);
    const seen = new Set<number>();
    const consider = (ids: Int32Array): void => {
      for (const id of ids) {
        if (seen.has(id)) continue;
        seen.add(id);
        top.push(id, score(id));
      }
    };
    const [model] = this.options.index.search(user, want, { exclude: [exclude] });
    if (model) consider(model.ids);
    if (prior && query && query.count > 0) {
      const hits = prior.index.search(query.vectors, want, { exclude: Array.from({ length: query.count }, () => exclude) });
      for (const h of hits) consider(h.ids);
    }
    return top.drain();
  }

  /**
   * The prior's query: the last `lastItems` distinct items of the history, latest first, as text
   * vectors `[Q, D]` (max pooling), or their mean `[1, D]` (mean pooling), and the query items
   * (whose prior is 0).
   */
  private priorQuery(history: ArrayLike<number>): { vectors: Float32Array; count: number; pooled: Float64Array[]; items: ReadonlySet<number> } {
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

  /**
   * Every item's fused score `[N + 1]` in tight loops over the tables (the exact path): the same
   * numbers as scoring the items one by one (dot64 per row), without a call per item.
   */
  private allScores(u: Float64Array, query: { pooled: Float64Array[]; items: ReadonlySet<number> } | undefined): Float64Array {
    const { items, hiddenSize: H, itemCount: N, prior } = this.options;
    const scores = new Float64Array(N + 1);
    for (let id = 1; id <= N; id++) scores[id] = dot64(u, items, id, H);
    if (!prior || !query || query.pooled.length === 0) return scores;
    const best = new Float64Array(N + 1).fill(Number.NEGATIVE_INFINITY);
    for (const q of query.pooled) {
      for (let id = 1; id <= N; id++) {
        const c = dot64(q, prior.table, id, prior.dims);
        if (c > (best[id] as number)) best[id] = c;
      }
    }
    const w = prior.settings.weight;
    for (let id = 1; id <= N; id++) if (!query.items.has(id)) scores[id] = (scores[id] as number) + w * (best[id] as number);
    return scores;
  }

  /** The prior of one item: 0 for a query item, else its pooled cosine to the query. */
  private priorOf(id: number, query: { pooled: Float64Array[]; items: ReadonlySet<number> }): number {
    if (query.items.has(id) || query.pooled.length === 0) return 0;
    const prior = this.options.prior as NonNullable<RankerOptions['prior']>;
    let best = Number.NEGATIVE_INFINITY;
    for (const q of query.pooled) best = Math.max(best, dot64(q, prior.table, id, prior.dims));
    return best;
  }
}

/** Rows 1..N of a `[N + 1, D]` table as a `[N, D]` matrix (what an index is built from; row r is id r + 1). */
export function withoutPadding(table: Float32Array, dims: number): ReturnType<typeof createMatrix> {
  const rows = table.length / dims - 1;
  return createMatrix(rows, dims, table.subarray(dims));
}
