import { createMatrix } from '../infra/matrix';
import type { TextPriorSettings } from '../trainer';
import type { AnnIndex } from './ann';
import { TopK, dot64 } from './ann/topk';

/**
 * Ranks the catalog for one user the way the offline evaluation does: score = cosine(user
 * vector, item vector) + w x text prior, the prior being the text similarity of each item to the
 * history's last `lastItems` distinct items (max or mean pooled, the query items themselves at 0:
 * trainer/textPrior.ts). Exact: the answer of scoring every item (items that provably cannot
 * enter the top k are skipped; see {@link Ranker.rank}). With an HNSW model index the fused score
 * is not one inner product, so candidates come from the model index (around the user vector) and
 * from the text index (around each query item, cached per item), and the union is scored exactly.
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
  /**
   * Candidates taken from the model index when it is approximate, and the length of each query
   * item's text-neighbour list (both paths). An HNSW search for them runs with `ef` equal to the
   * count asked (hnswlib's least) and takes the graph's own hits (`rescore: false`): the union is
   * scored exactly here, so this count is the recall knob of ranking, and the index's default `ef`
   * stays for plain nearest-item searches.
   */
  readonly candidates: number;
  /** Text-neighbour lists kept (default 50,000). */
  readonly neighbourCache?: number;
}

/**
 * Every item's model cosine to the user vector (index = item id, `[N + 1]`) computed elsewhere
 * (in float32 natively: serving/onnx/itemScorer.ts), each within `margin` of the exact float64
 * one. The exact path then scores exactly only the items that could still enter the top k.
 */
export interface ApproximateCosines {
  readonly cosines: Float32Array;
  readonly margin: number;
}

export interface RankedItems {
  readonly ids: Int32Array;
  readonly scores: Float64Array;
}

/** An item's nearest items in text space: ids and exact cosines, best first, and a bound on every other item's cosine. */
export interface TextNeighbours {
  readonly ids: Int32Array;
  readonly sims: Float64Array;
  /** No item outside `ids` has a higher cosine (exact for the exact path; HNSW's for the approximate one). */
  readonly bound: number;
}

/** Counters of the work rank() did, for tests and the benchmark. */
export interface RankerStats {
  ranked: number;
  /** Text-neighbour lists served from the cache, and computed. */
  neighbourHits: number;
  neighbourMisses: number;
  /** Text-neighbour lists computed ahead of ranking from approximate cosines ({@link Ranker.fillNeighbours}). */
  neighbourFills: number;
  /** Item cosines to a query item computed because no neighbour list settled them. */
  priorDots: number;
  /** Rankings that ruled items out with approximate cosines. */
  approximate: number;
  /** Items given an exact score (model cosine, and the prior where it counts). */
  scored: number;
}

/**
 * Text-neighbour lists by the shared text index they were computed over (its `identity`) and
 * their length: two rankers over handles of one index (versions of one rebuild's catalog, whose
 * text vectors are the same bytes) compute the same list for a query item, so the version a
 * server swaps to starts with the lists its predecessor computed instead of an empty cache
 * (at 100,000 items an HNSW search over 256-dimension text vectors per query item, for every
 * user's first request after the swap). Dropped with the index.
 */
const sharedNeighbours = new WeakMap<object, Map<string, Map<number, TextNeighbours>>>();

/** The lists of rankers over `textIndex` whose lists are `length` long and computed the same way (`how`: from the text index, or exactly). */
function neighbourListsFor(textIndex: AnnIndex | undefined, length: number, how: 'index' | 'exact'): Map<number, TextNeighbours> {
  const identity = textIndex?.identity;
  if (!identity) return new Map();
  let byKind = sharedNeighbours.get(identity);
  if (!byKind) sharedNeighbours.set(identity, (byKind = new Map()));
  const key = `${how}:${length}`;
  let lists = byKind.get(key);
  if (!lists) byKind.set(key, (lists = new Map()));
  return lists;
}

export class Ranker {
  /** Text-neighbour lists by query item, least recently used first (shared with rankers over the same text index: {@link neighbourListsFor}). */
  private readonly neighbours: Map<number, TextNeighbours>;
  private allIds: Int32Array | undefined;
  /** Scratch of {@link gatherLists}: every item's best listed cosine in the ranking under way, -Infinity when unlisted. */
  private listed = new Float64Array(0);
  /** Scratch of {@link rank}: each item's state in the ranking under way. */
  private states = new Uint8Array(0);
  /**
   * Scratch of {@link rank} (synchronous, so one set serves every request): the user vector in
   * float64, the selections, and the query items' text rows in float64 ({@link priorQuery}).
   * Array buffers made per request are what a young-generation collection spends most of its
   * pause on under load (sweeping them), so the ranking makes none but its answer.
   */
  private readonly userScratch: Float64Array;
  private readonly topScratch = new TopK(0);
  private readonly floorScratch = new TopK(0);
  private readonly queryScratch: Float64Array[] = [];
  /** How many neighbour lists the cache keeps (least recently used dropped first). */
  private readonly neighbourCapacity: number;
  readonly stats: RankerStats = { ranked: 0, neighbourHits: 0, neighbourMisses: 0, neighbourFills: 0, priorDots: 0, approximate: 0, scored: 0 };

  constructor(private readonly options: RankerOptions) {
    this.neighbourCapacity = options.neighbourCache ?? 50_000;
    this.userScratch = new Float64Array(options.hiddenSize);
    this.neighbours = neighbourListsFor(options.prior?.index, Math.min(options.itemCount, options.candidates), options.index.kind === 'exact' ? 'exact' : 'index');
  }

  /** Whether every item is scored (no candidate generation). */
  get exact(): boolean {
    return this.options.index.kind === 'exact';
  }

  /**
   * The top `k` items for a user vector `[H]` and the history the model read (dense ids, oldest
   * first), never padding nor an `exclude`d id.
   *
   * With a max-pooled prior both paths read each query item's text neighbours (computed once per
   * item and cached): an item in a list has its cosine to that query item there, and every item
   * outside has at most the list's bound. The exact path scores the lists' items, then every
   * other item whose model cosine + w x the largest bound could still enter the top k (the rest
   * cannot: skipping them changes nothing). The approximate path scores the union of the model
   * index's candidates and the lists. A mean-pooled prior scores its candidates directly.
   *
   * `approximate` (exact path): every item's cosine computed elsewhere within a known margin;
   * items are then ruled out with it plus the margin and the rest scored exactly, so the answer
   * is the same as without it.
   */
  rank(user: Float32Array, history: ArrayLike<number>, exclude: ReadonlySet<number>, k: number, approximate?: ApproximateCosines): RankedItems {
    this.stats.ranked++;
    if (user.length !== this.options.hiddenSize) throw new Error(`ranker: a user vector of ${user.length} values, expected ${this.options.hiddenSize}`);
    const u = this.userScratch;
    u.set(user);
    const query = this.options.prior ? this.priorQuery(history) : undefined;
    const top = this.topScratch.reset(k);
    const { items, hiddenSize: H, itemCount } = this.options;
    if (!query || query.count === 0) {
      if (this.exact) {
        const { cosines, margin } = this.cosines(u, approximate);
        let threshold = top.threshold;
        for (let id = 1; id <= itemCount; id++) {
          const cos = cosines[id] as number;
          if (cos + margin < threshold || exclude.has(id)) continue;
          top.push(id, margin === 0 ? cos : dot64(u, items, id, H));
          threshold = top.threshold;
        }
      } else {
        for (const id of this.modelCandidates(user, exclude, k)) if (!exclude.has(id)) top.push(id, dot64(u, items, id, H));
      }
      return top.drain();
    }
    const prior = this.options.prior as NonNullable<RankerOptions['prior']>;
    const w = prior.settings.weight;
    if (prior.settings.pooling === 'mean') {
      // Mean pooling: one query vector, no per-item lists; candidates scored directly.
      const ids = this.exact ? this.everyItem() : this.union(this.modelCandidates(user, exclude, k), this.meanCandidates(query, exclude, k));
      for (const id of ids) {
        if (exclude.has(id)) continue;
        const text = query.items.has(id) ? 0 : dot64(query.pooled[0] as Float64Array, prior.table, id, prior.dims);
        top.push(id, dot64(u, items, id, H) + w * text);
      }
      this.stats.priorDots += ids.length;
      return top.drain();
    }
    const lists = query.ids.map((id, j) => this.textNeighbours(id, query.pooled[j] as Float64Array, prior.table.subarray(id * prior.dims, (id + 1) * prior.dims)));
    // Per item: 0 not scored yet, 1 scored or excluded, 2 a query item (its prior is 0). Reused
    // between rankings (rank is synchronous), so that requests do not churn array buffers.
    if (this.states.length !== itemCount + 1) this.states = new Uint8Array(itemCount + 1);
    const state = this.states;
    state.fill(0);
    state[0] = 1;
    for (const id of exclude) if (id > 0 && id <= itemCount) state[id] = 1;
    for (const id of query.ids) if (state[id] === 0) state[id] = 2;
    const listed = this.gatherLists(lists);
    try {
      const known = this.listed; // known[id]: the item's best cosine to a query item in the lists
      const bounds = lists.map((l) => l.bound);
      let bound = Number.NEGATIVE_INFINITY;
      for (const b of bounds) bound = Math.max(bound, b);
      const priorOf = (id: number): number => this.maxPrior(id, query, bounds);
      if (this.exact) {
        const { cosines, margin } = this.cosines(u, approximate);
        const exactCos = (id: number, cos: number): number => (margin === 0 ? cos : dot64(u, items, id, H));
        // A floor under the final k-th score: the k-th best lower bound of the listed items and
        // the query items (each at least its cosine - margin + w x its best listed cosine).
        const floor = this.floorScratch.reset(k);
        for (const id of listed) if (state[id] === 0) floor.push(id, (cosines[id] as number) - margin + w * (known[id] as number));
        for (const id of query.ids) if (state[id] === 2) floor.push(id, (cosines[id] as number) - margin);
        let threshold = floor.threshold;
        // The listed items and the query items (whose priors the lists bound item by item)...
        const consider = (id: number, upper: number, queryItem: boolean): void => {
          state[id] = 1;
          if (upper < threshold || !top.accepts(upper, id)) return;
          const cos = exactCos(id, cosines[id] as number);
          top.push(id, queryItem ? cos : cos + w * priorOf(id));
          this.stats.scored++;
          threshold = Math.max(threshold, top.threshold);
        };
        for (const id of query.ids) if (state[id] === 2) consider(id, (cosines[id] as number) + margin, true);
        for (const id of listed) {
          if (state[id] !== 0) continue;
          const best = known[id] as number;
          // Its prior is at most its best listed cosine or, for a list it is not in, that list's bound.
          consider(id, (cosines[id] as number) + margin + w * (best > bound ? best : bound), false);
        }
        // ...then every other item, whose prior is at most the largest bound: only a cosine of at
        // least `cutoff` can enter the top k, and the loop mostly compares.
        const lift = margin + w * bound;
        let cutoff = threshold - lift;
        for (let id = 1; id <= itemCount; id++) {
          const cos = cosines[id] as number;
          if (cos < cutoff || state[id] !== 0) continue;
          if (!top.accepts(cos + lift, id)) continue;
          top.push(id, exactCos(id, cos) + w * priorOf(id));
          this.stats.scored++;
          threshold = Math.max(threshold, top.threshold);
          cutoff = threshold - lift;
        }
      } else {
        const score = (id: number): void => {
          const s = state[id];
          if (s === 1) return;
          state[id] = 1;
          const cos = dot64(u, items, id, H);
          top.push(id, s === 2 ? cos : cos + w * priorOf(id));
          this.stats.scored++;
        };
        for (const id of listed) score(id);
        const candidates = this.modelCandidates(user, exclude, k);
        for (let j = 0; j < candidates.length; j++) score(candidates[j] as number);
      }
    } finally {
      for (const id of listed) this.listed[id] = Number.NEGATIVE_INFINITY;
    }
    return top.drain();
  }

  /** Ids 1..N (made once). */
  private everyItem(): Int32Array {
    this.allIds ??= Int32Array.from({ length: this.options.itemCount }, (_, i) => i + 1);
    return this.allIds;
  }

  /**
   * Every item's model cosine (index = id) within `margin` of the exact one: the given
   * approximate cosines, or exact ones (margin 0) computed in one tight pass.
   */
  private cosines(u: Float64Array, approximate: ApproximateCosines | undefined): { readonly cosines: ArrayLike<number>; readonly margin: number } {
    if (!approximate) return { cosines: this.allCosines(u), margin: 0 };
    if (approximate.cosines.length !== this.options.itemCount + 1) {
      throw new Error(`ranker: ${approximate.cosines.length} approximate cosines for ${this.options.itemCount} items (expected N + 1)`);
    }
    this.stats.approximate++;
    return approximate;
  }

  /** The model cosine of every item 1..N (index = id). */
  private allCosines(u: Float64Array): Float64Array {
    const { items, hiddenSize: H, itemCount } = this.options;
    const out = new Float64Array(itemCount + 1);
    for (let id = 1; id <= itemCount; id++) out[id] = dot64(u, items, id, H);
    return out;
  }

  /**
   * Writes every listed item's best cosine to a query item into {@link listed} (index = id; the
   * rest stay -Infinity) and returns the listed ids, each once. The caller resets them.
   */
  private gatherLists(lists: readonly TextNeighbours[]): number[] {
    if (this.listed.length !== this.options.itemCount + 1) this.listed = new Float64Array(this.options.itemCount + 1).fill(Number.NEGATIVE_INFINITY);
    const known = this.listed;
    const ids: number[] = [];
    for (const list of lists) {
      for (let j = 0; j < list.ids.length; j++) {
        const id = list.ids[j] as number;
        const sim = list.sims[j] as number;
        const was = known[id] as number;
        if (was === Number.NEGATIVE_INFINITY) ids.push(id);
        if (sim > was) known[id] = sim;
      }
    }
    return ids;
  }

  /**
   * The max-pooled prior of `id` (its best cosine to a query item): the best listed cosine
   * ({@link gatherLists}), and a computed cosine for each query item whose list's bound is above
   * it. An item in list j has a cosine of at least bounds[j] there, so a list whose bound is above
   * the best listed cosine does not hold the item; one whose bound is not cannot raise it.
   */
  private maxPrior(id: number, query: PriorQuery, bounds: readonly number[]): number {
    const prior = this.options.prior as NonNullable<RankerOptions['prior']>;
    let best = this.listed[id] as number;
    for (let j = 0; j < bounds.length; j++) {
      if ((bounds[j] as number) <= best) continue;
      best = Math.max(best, dot64(query.pooled[j] as Float64Array, prior.table, id, prior.dims));
      this.stats.priorDots++;
    }
    return best;
  }

  /** Query item `id`'s cached text-neighbour list, if there is one (for inspection; does not count as a use). */
  cachedNeighbours(id: number): TextNeighbours | undefined {
    return this.neighbours.get(id);
  }

  /**
   * The query items of `history` (exact path, max-pooled prior) whose text-neighbour lists are
   * not cached: what {@link fillNeighbours} can compute ahead of {@link rank}, in a batch.
   */
  missingNeighbours(history: ArrayLike<number>): number[] {
    const prior = this.options.prior;
    if (!prior || !this.exact || prior.settings.pooling !== 'max') return [];
    return this.priorQuery(history).ids.filter((id) => !this.neighbours.has(id));
  }

  /**
   * Caches the text-neighbour lists of query items `ids` from approximate text cosines (row j of
   * `cosines` `[ids.length, N + 1]`: item ids[j]'s cosine to every item, each within `margin` of
   * the exact one). The list is the same as computed from exact cosines: items are ruled out
   * with the approximate ones and the rest scored exactly.
   */
  fillNeighbours(ids: readonly number[], cosines: Float32Array, margin: number): void {
    const prior = this.options.prior;
    const N = this.options.itemCount;
    if (ids.length === 0) return;
    if (!prior) throw new Error('ranker: fillNeighbours without a text prior');
    if (cosines.length !== ids.length * (N + 1)) throw new Error(`ranker: ${cosines.length} text cosines for ${ids.length} query items of ${N} items (expected ${ids.length} x (N + 1))`);
    const M = Math.min(N, this.options.candidates);
    ids.forEach((id, j) => {
      if (this.neighbours.has(id)) return;
      const row = cosines.subarray(j * (N + 1), (j + 1) * (N + 1));
      // The M-th best approximate cosine: every item of the exact top M is within 2 x margin of it.
      const approxTop = new TopK(M);
      for (let i = 1; i <= N; i++) approxTop.push(i, row[i] as number);
      const floor = approxTop.threshold - 2 * margin;
      const q = Float64Array.from(prior.table.subarray(id * prior.dims, (id + 1) * prior.dims));
      const top = new TopK(M);
      for (let i = 1; i <= N; i++) if ((row[i] as number) >= floor) top.push(i, dot64(q, prior.table, i, prior.dims));
      this.stats.neighbourFills++;
      this.cacheNeighbours(id, top);
    });
  }

  /** Query item `id`'s text neighbours (`vector`: its text row), from the cache or computed. */
  private textNeighbours(id: number, q: Float64Array, vector: Float32Array): TextNeighbours {
    const cached = this.neighbours.get(id);
    if (cached) {
      this.neighbours.delete(id); // most recently used last
      this.neighbours.set(id, cached);
      this.stats.neighbourHits++;
      return cached;
    }
    this.stats.neighbourMisses++;
    const prior = this.options.prior as NonNullable<RankerOptions['prior']>;
    const M = Math.min(this.options.itemCount, this.options.candidates);
    const top = new TopK(M);
    if (this.exact) {
      for (let i = 1; i <= this.options.itemCount; i++) top.push(i, dot64(q, prior.table, i, prior.dims));
    } else {
      const [hits] = prior.index.search(vector, M, { ef: M, rescore: false });
      for (const i of hits?.ids ?? []) top.push(i, dot64(q, prior.table, i, prior.dims));
    }
    return this.cacheNeighbours(id, top);
  }

  /** Caches query item `id`'s list: the best items in `top` (exact cosines). */
  private cacheNeighbours(id: number, top: TopK): TextNeighbours {
    const { ids: ranked, scores } = top.drain();
    const complete = ranked.length >= this.options.itemCount;
    // Sorted ids with their cosines, for binary search.
    const order = Array.from(ranked.keys()).sort((a, b) => (ranked[a] as number) - (ranked[b] as number));
    const entry: TextNeighbours = {
      ids: Int32Array.from(order, (j) => ranked[j] as number),
      sims: Float64Array.from(order, (j) => scores[j] as number),
      bound: complete ? Number.NEGATIVE_INFINITY : ((scores[scores.length - 1] as number | undefined) ?? Number.NEGATIVE_INFINITY),
    };
    this.neighbours.set(id, entry);
    if (this.neighbours.size > this.neighbourCapacity) this.neighbours.delete(this.neighbours.keys().next().value as number);
    return entry;
  }

  /** Candidates around the user vector in the model index. */
  private modelCandidates(user: Float32Array, exclude: ReadonlySet<number>, k: number): Int32Array {
    const wanted = Math.max(k, this.options.candidates);
    const [hits] = this.options.index.search(user, wanted, { exclude: [exclude], ef: wanted, rescore: false });
    return hits?.ids ?? new Int32Array(0);
  }

  /** Candidates around the mean-pooled query vector in the text index. */
  private meanCandidates(query: PriorQuery, exclude: ReadonlySet<number>, k: number): Int32Array {
    const prior = this.options.prior as NonNullable<RankerOptions['prior']>;
    const wanted = Math.max(k, this.options.candidates);
    const [hits] = prior.index.search(Float32Array.from(query.pooled[0] as Float64Array), wanted, { exclude: [exclude], ef: wanted, rescore: false });
    return hits?.ids ?? new Int32Array(0);
  }

  private union(a: Int32Array, b: Int32Array): Int32Array {
    return Int32Array.from(new Set([...a, ...b]));
  }

  /**
   * The prior's query: the last `lastItems` distinct items of the history, latest first, the
   * vectors the prior pools over in float64 (each item's text row for max, their mean for mean:
   * scratch arrays, valid until the next call), and the query items (whose prior is 0).
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
    const scratch = (j: number): Float64Array => {
      while (this.queryScratch.length <= j) this.queryScratch.push(new Float64Array(D));
      return this.queryScratch[j] as Float64Array;
    };
    let pooled: Float64Array[];
    if (pooling === 'mean' && picked.length > 0) {
      const mean = scratch(0).fill(0);
      for (const id of picked) for (let d = 0; d < D; d++) (mean[d] as number) += (prior.table[id * D + d] as number) / picked.length;
      pooled = [mean];
    } else {
      pooled = picked.map((id, j) => {
        const row = scratch(j);
        row.set(prior.table.subarray(id * D, (id + 1) * D));
        return row;
      });
    }
    return { ids: picked, count: picked.length, pooled, items: new Set(picked) };
  }
}

interface PriorQuery {
  readonly ids: readonly number[];
  readonly count: number;
  readonly pooled: Float64Array[];
  readonly items: ReadonlySet<number>;
}

/** Rows 1..N of a `[N + 1, D]` table as a `[N, D]` matrix (what an index is built from; row r is id r + 1). */
export function withoutPadding(table: Float32Array, dims: number): ReturnType<typeof createMatrix> {
  const rows = table.length / dims - 1;
  return createMatrix(rows, dims, table.subarray(dims));
}
