/**
 * Ranking metrics of one held-out item per user, as pure functions of the target's 0-based rank
 * (0 = ranked first). With a single relevant item Recall@K and Hit@K coincide; IDCG is 1.
 */

export const METRIC_NAMES = ['recall', 'ndcg', 'mrr', 'hit'] as const;
export type MetricName = (typeof METRIC_NAMES)[number];

/** 1 when the target is in the top K. */
export function recallAtK(rank: number, k: number): number {
  return rank < k ? 1 : 0;
}

/** Same as {@link recallAtK} for one relevant item. */
export function hitAtK(rank: number, k: number): number {
  return rank < k ? 1 : 0;
}

/** `1 / log2(rank + 2)` inside the top K, else 0. */
export function ndcgAtK(rank: number, k: number): number {
  return rank < k ? 1 / Math.log2(rank + 2) : 0;
}

/** `1 / (rank + 1)` inside the top K, else 0. */
export function mrrAtK(rank: number, k: number): number {
  return rank < k ? 1 / (rank + 1) : 0;
}

const FUNCTIONS: Record<MetricName, (rank: number, k: number) => number> = { recall: recallAtK, ndcg: ndcgAtK, mrr: mrrAtK, hit: hitAtK };

/** Key of a metric at a cut-off, e.g. `ndcg@10`. */
export function metricKey(name: MetricName, k: number): string {
  return `${name}@${k}`;
}

/**
 * The rank rule of the full-ranking evaluation, written once here; `rankTargets` (the tensor
 * version in evaluate.ts) follows it exactly. It cannot be fooled by ties or by NaN:
 * - the competing items are 1..N except the target and the `excluded` items: item 0 (padding)
 *   and excluded items never compete (the target is never excluded);
 * - a finite target score: the rank is the number of competing items whose score is at least the
 *   target's or is NaN. Ties count pessimistically (every item tied with the target ranks above
 *   it), so a constant score row ranks every target last, and a NaN competitor ranks above;
 * - a non-finite target score (NaN, +Infinity, -Infinity) gets the worst rank, the number of
 *   competing items.
 *
 * 0-based: 0 = ranked first. `scores` `[N + 1]`, index = item id.
 */
export function rankOfTarget(scores: ArrayLike<number>, target: number, excluded?: ReadonlySet<number>): number {
  const t = scores[target] as number;
  const finite = Number.isFinite(t);
  let rank = 0;
  for (let i = 1; i < scores.length; i++) {
    if (i === target || excluded?.has(i)) continue;
    const s = scores[i] as number;
    if (!finite || s >= t || Number.isNaN(s)) rank++;
  }
  return rank;
}

/** Sums metrics over users and averages them at the end. */
export class MetricAccumulator {
  private readonly sums = new Map<string, number>();
  private count = 0;

  constructor(readonly ks: readonly number[]) {
    for (const name of METRIC_NAMES) for (const k of ks) this.sums.set(metricKey(name, k), 0);
  }

  add(rank: number): void {
    this.count++;
    for (const name of METRIC_NAMES) {
      const fn = FUNCTIONS[name];
      for (const k of this.ks) {
        const key = metricKey(name, k);
        this.sums.set(key, (this.sums.get(key) as number) + fn(rank, k));
      }
    }
  }

  get users(): number {
    return this.count;
  }

  /** Mean of every metric over the users added (0 when none). */
  result(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [key, sum] of this.sums) out[key] = this.count === 0 ? 0 : sum / this.count;
    return out;
  }
}
