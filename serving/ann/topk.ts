/**
 * The scoring and selection every {@link AnnIndex} shares, so that all implementations return the
 * same numbers for the same item: the score is the inner product of the float32 query and the
 * float32 item vector, accumulated in float64 ({@link dot64}); the order is score descending,
 * then item id ascending ({@link TopK}).
 */

/**
 * Inner product of `query` `[D]` and row `row` of `rows` `[*, D]`, in float64 (four partial sums,
 * added pairwise at the end). Every implementation scores through this one function, so scores
 * agree bit for bit across them.
 */
export function dot64(query: Float64Array, rows: Float32Array, row: number, dims: number): number {
  const o = row * dims;
  const d4 = dims & ~3;
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let j = 0;
  for (; j < d4; j += 4) {
    s0 += (query[j] as number) * (rows[o + j] as number);
    s1 += (query[j + 1] as number) * (rows[o + j + 1] as number);
    s2 += (query[j + 2] as number) * (rows[o + j + 2] as number);
    s3 += (query[j + 3] as number) * (rows[o + j + 3] as number);
  }
  for (; j < dims; j++) s0 += (query[j] as number) * (rows[o + j] as number);
  return s0 + s1 + (s2 + s3);
}

/** True when (scoreA, idA) ranks before (scoreB, idB): higher score first, then lower id. */
export function ranksBefore(scoreA: number, idA: number, scoreB: number, idB: number): boolean {
  return scoreA > scoreB || (scoreA === scoreB && idA < idB);
}

/**
 * The best `k` (id, score) pairs pushed so far, as a binary heap whose root is the worst kept pair
 * (O(log k) per accepted push; a push that cannot enter is rejected in O(1)).
 *
 * @example
 * const top = new TopK(2);
 * top.push(7, 0.5); top.push(3, 0.9); top.push(5, 0.5);
 * top.drain(); // { ids: [3, 5], scores: [0.9, 0.5] }  (0.5 tie: lower id 5 before 7)
 */
export class TopK {
  private ids: Int32Array; // [capacity], heap order
  private scores: Float64Array; // [capacity], heap order
  private count = 0;
  private kept: number;

  constructor(k: number) {
    this.kept = k;
    this.ids = new Int32Array(k);
    this.scores = new Float64Array(k);
  }

  /** How many pairs it keeps. */
  get k(): number {
    return this.kept;
  }

  /**
   * Empties it for a new selection of the best `k`, reusing its arrays when they are large
   * enough: a ranking per request then allocates none (each array buffer is freed by a
   * young-generation collection, and their sweeping is most of its pause under load).
   */
  reset(k: number): this {
    if (k > this.ids.length) {
      this.ids = new Int32Array(k);
      this.scores = new Float64Array(k);
    }
    this.kept = k;
    this.count = 0;
    return this;
  }

  get size(): number {
    return this.count;
  }

  /** The worst kept score once k pairs are kept (a pair must reach it to enter), -Infinity before; +Infinity when k is 0. */
  get threshold(): number {
    if (this.kept === 0) return Number.POSITIVE_INFINITY;
    return this.count < this.kept ? Number.NEGATIVE_INFINITY : (this.scores[0] as number);
  }

  /** Whether a pair with this score and id would be kept (cheap pre-check before scoring work). */
  accepts(score: number, id: number): boolean {
    if (this.kept === 0) return false;
    if (this.count < this.kept) return true;
    return ranksBefore(score, id, this.scores[0] as number, this.ids[0] as number);
  }

  push(id: number, score: number): void {
    if (this.count < this.kept) {
      let i = this.count++;
      // Sift up: the parent must be worse than (rank after) the child.
      while (i > 0) {
        const p = (i - 1) >> 1;
        if (!ranksBefore(this.scores[p] as number, this.ids[p] as number, score, id)) break;
        this.ids[i] = this.ids[p] as number;
        this.scores[i] = this.scores[p] as number;
        i = p;
      }
      this.ids[i] = id;
      this.scores[i] = score;
      return;
    }
    if (!this.accepts(score, id)) return;
    // Replace the root (the worst kept) and sift down.
    let i = 0;
    const n = this.count;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      let w = l;
      if (r < n && ranksBefore(this.scores[l] as number, this.ids[l] as number, this.scores[r] as number, this.ids[r] as number)) w = r;
      if (!ranksBefore(score, id, this.scores[w] as number, this.ids[w] as number)) break;
      this.ids[i] = this.ids[w] as number;
      this.scores[i] = this.scores[w] as number;
      i = w;
    }
    this.ids[i] = id;
    this.scores[i] = score;
  }

  /** The kept pairs, best first; empties the heap. */
  drain(): { ids: Int32Array; scores: Float64Array } {
    const n = this.count;
    const order = Array.from({ length: n }, (_, i) => i);
    order.sort((a, b) => {
      const sa = this.scores[a] as number;
      const sb = this.scores[b] as number;
      return sa !== sb ? sb - sa : (this.ids[a] as number) - (this.ids[b] as number);
    });
    const ids = new Int32Array(n);
    const scores = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      ids[i] = this.ids[order[i] as number] as number;
      scores[i] = this.scores[order[i] as number] as number;
    }
    this.count = 0;
    return { ids, scores };
  }
}
