import { tf } from '../infra/tf';
import { makeBatch, historyOf, type SequenceExamples } from './data';
import { MetricAccumulator } from './metrics';
import type { SequentialRecommender } from './models/contract';

/**
 * Full-ranking evaluation: every item 1..N is a candidate for every user (no sampled negatives),
 * with the rank rule of {@link rankOfTarget} (ties broken by item id, lower first).
 */

export interface EvaluationOptions {
  readonly ks: readonly number[];
  /** Remove each user's history items (except the target) from the candidates. */
  readonly excludeHistory: boolean;
  readonly batchSize: number;
  /** Called after each batch with users done so far. */
  readonly onBatch?: (done: number, total: number) => void;
}

export interface EvaluationResult {
  /** Mean over users, keyed `recall@10`, `ndcg@10`, ... */
  readonly metrics: Record<string, number>;
  readonly users: number;
  readonly excludeHistory: boolean;
  readonly seconds: number;
}

/** Which (row, item) pairs to remove from the candidates. */
export interface Exclusions {
  readonly rows: Int32Array;
  readonly items: Int32Array;
}

/**
 * 0-based ranks of the targets: padding (column 0) and `excluded` pairs score -Infinity, then
 * `rank = #{score > target} + #{score == target and id < target}`.
 *
 * @param scores `[B, N + 1]`
 * @param targets `[B]`
 * @returns `[B]` int32
 */
export function rankTargets(scores: tf.Tensor2D, targets: Int32Array, excluded?: Exclusions): tf.Tensor1D {
  return tf.tidy(() => {
    const [B, n1] = scores.shape;
    const extra = excluded?.rows.length ?? 0;
    const indices = new Int32Array((B + extra) * 2);
    for (let b = 0; b < B; b++) indices[2 * b] = b; // (b, 0): padding
    for (let e = 0; e < extra; e++) {
      indices[2 * (B + e)] = excluded!.rows[e] as number;
      indices[2 * (B + e) + 1] = excluded!.items[e] as number;
    }
    const mask = tf.scatterND(
      tf.tensor2d(indices, [B + extra, 2], 'int32'),
      tf.fill([B + extra], Number.NEGATIVE_INFINITY),
      [B, n1],
    ); // [B, N + 1]: 0 or -Infinity
    const masked = tf.add(scores, mask); // [B, N + 1]
    const targetIndex = new Int32Array(B * 2);
    for (let b = 0; b < B; b++) {
      targetIndex[2 * b] = b;
      targetIndex[2 * b + 1] = targets[b] as number;
    }
    const targetScores = tf.reshape(tf.gatherND(masked, tf.tensor2d(targetIndex, [B, 2], 'int32')), [B, 1]); // [B, 1]
    const higher = tf.sum(tf.cast(tf.greater(masked, targetScores), 'int32'), 1); // [B]
    const ids = tf.range(0, n1, 1, 'int32').reshape([1, n1]); // [1, N + 1]
    const lowerIdTies = tf.logicalAnd(tf.equal(masked, targetScores), tf.less(ids, tf.tensor2d(targets, [B, 1], 'int32'))); // [B, N + 1]
    return tf.add(higher, tf.sum(tf.cast(lowerIdTies, 'int32'), 1)) as tf.Tensor1D;
  });
}

function exclusionsOf(examples: SequenceExamples, indices: Int32Array): Exclusions {
  const rows: number[] = [];
  const items: number[] = [];
  indices.forEach((i, b) => {
    const target = examples.targets[i] as number;
    const seen = new Set<number>();
    for (const item of historyOf(examples, i)) {
      if (item === target || item === 0 || seen.has(item)) continue;
      seen.add(item);
      rows.push(b);
      items.push(item);
    }
  });
  return { rows: Int32Array.from(rows), items: Int32Array.from(items) };
}

/** Ranks every example's target among all items and averages the metrics over users. */
export async function evaluateFullRanking(
  model: SequentialRecommender,
  examples: SequenceExamples,
  maxLength: number,
  options: EvaluationOptions,
): Promise<EvaluationResult> {
  const started = performance.now();
  const acc = new MetricAccumulator(options.ks);
  const table = model.itemTable(); // [N + 1, H], once per evaluation
  try {
    for (let start = 0; start < examples.count; start += options.batchSize) {
      const indices = Int32Array.from({ length: Math.min(options.batchSize, examples.count - start) }, (_, j) => start + j);
      const batch = makeBatch(examples, indices, maxLength);
      const excluded = options.excludeHistory ? exclusionsOf(examples, indices) : undefined;
      const ranks = tf.tidy(() => rankTargets(model.scoreAllItems(batch, table), batch.targets, excluded));
      const values = await ranks.data();
      ranks.dispose();
      for (const r of values) acc.add(r);
      options.onBatch?.(start + indices.length, examples.count);
    }
  } finally {
    table.dispose();
  }
  return { metrics: acc.result(), users: acc.users, excludeHistory: options.excludeHistory, seconds: (performance.now() - started) / 1000 };
}
