import { ValidationError } from '../errors';
import { tf } from '../infra/tf';
import { makeBatch, historyOf, type SequenceBatch, type SequenceExamples } from './data';
import { MetricAccumulator } from './metrics';
import type { SequentialRecommender } from './models/contract';
import type { TextPrior } from './textPrior';

/**
 * Full-ranking evaluation: every item 1..N is a candidate for every user (no sampled negatives),
 * with the rank rule of {@link rankOfTarget} (ties broken by item id, lower first).
 */

export interface EvaluationOptions {
  readonly ks: readonly number[];
  /** Remove each user's history items (except the target) from the candidates. */
  readonly excludeHistory: boolean;
  readonly batchSize: number;
  /** Rank by the model's score plus this text prior (see {@link TextPrior}); model scores alone without it. */
  readonly textPrior?: TextPrior;
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

/** Turns a batch's model scores `[B, N + 1]` into the scores that rank it (inside a tidy). */
type Scorer = (modelScores: tf.Tensor2D, batch: SequenceBatch) => tf.Tensor2D;

/** One pass over the model: ranks every example's target under each scorer, metrics per scorer. */
async function rankAll(
  model: SequentialRecommender,
  examples: SequenceExamples,
  maxLength: number,
  options: EvaluationOptions,
  scorers: readonly Scorer[],
): Promise<EvaluationResult[]> {
  const started = performance.now();
  const accs = scorers.map(() => new MetricAccumulator(options.ks));
  const table = model.itemTable(); // [N + 1, H], once per evaluation
  try {
    for (let start = 0; start < examples.count; start += options.batchSize) {
      const indices = Int32Array.from({ length: Math.min(options.batchSize, examples.count - start) }, (_, j) => start + j);
      const batch = makeBatch(examples, indices, maxLength);
      const excluded = options.excludeHistory ? exclusionsOf(examples, indices) : undefined;
      const ranks = tf.tidy(() => {
        const scores = model.scoreAllItems(batch, table); // [B, N + 1]
        return scorers.map((score) => rankTargets(score(scores, batch), batch.targets, excluded));
      });
      for (let i = 0; i < ranks.length; i++) {
        const r = ranks[i] as tf.Tensor1D;
        const values = await r.data();
        r.dispose();
        for (const v of values) accs[i]?.add(v);
      }
      options.onBatch?.(start + indices.length, examples.count);
    }
  } finally {
    table.dispose();
  }
  const seconds = (performance.now() - started) / 1000;
  return accs.map((acc) => ({ metrics: acc.result(), users: acc.users, excludeHistory: options.excludeHistory, seconds }));
}

/** Ranks every example's target among all items and averages the metrics over users. */
export async function evaluateFullRanking(
  model: SequentialRecommender,
  examples: SequenceExamples,
  maxLength: number,
  options: EvaluationOptions,
): Promise<EvaluationResult> {
  const prior = options.textPrior;
  const [result] = await rankAll(model, examples, maxLength, options, [prior ? (scores, batch) => prior.fuse(scores, batch) : (scores) => scores]);
  return result as EvaluationResult;
}

/**
 * The full-ranking metrics of `model + w x prior` for every weight in `weights` (the prior's own
 * weight is ignored), from one pass over the model: what tuning the text prior needs.
 */
export async function evaluateTextPriorWeights(
  model: SequentialRecommender,
  prior: TextPrior,
  examples: SequenceExamples,
  maxLength: number,
  weights: readonly number[],
  options: Omit<EvaluationOptions, 'textPrior'>,
): Promise<EvaluationResult[]> {
  let cached: { batch: SequenceBatch; text: tf.Tensor2D } | undefined;
  // The prior of a batch is computed once and shared by every weight (all inside one tidy).
  const textOf = (batch: SequenceBatch): tf.Tensor2D => {
    if (cached?.batch !== batch) cached = { batch, text: prior.scores(batch) };
    return cached.text;
  };
  return rankAll(
    model,
    examples,
    maxLength,
    options,
    weights.map((w) => (scores: tf.Tensor2D, batch: SequenceBatch) => (w === 0 ? scores : (tf.add(scores, tf.mul(textOf(batch), w)) as tf.Tensor2D))),
  );
}

/** The text prior weight chosen on the validation split, and what it gives. */
export interface TextPriorTuning {
  readonly weight: number;
  readonly lastItems: number;
  /** The validation metric the weight was chosen by, e.g. `ndcg@10`. */
  readonly metric: string;
  /** That metric for every weight tried (0 = the model alone), in the order given. */
  readonly curve: ReadonlyArray<{ readonly weight: number; readonly value: number }>;
  readonly valid: EvaluationResult;
  readonly test: EvaluationResult;
}

/**
 * Chooses the text prior's weight: every weight in `weights` plus 0 (the model alone) is scored
 * on `valid`; the best by `metric` wins (ties: the smaller weight); `test` is evaluated with it.
 */
export async function tuneTextPrior(
  model: SequentialRecommender,
  prior: TextPrior,
  data: { readonly valid: SequenceExamples; readonly test: SequenceExamples },
  maxLength: number,
  weights: readonly number[],
  metric: string,
  options: Omit<EvaluationOptions, 'textPrior'>,
): Promise<TextPriorTuning> {
  const tried = [0, ...[...new Set(weights)].filter((w) => w !== 0).sort((a, b) => a - b)];
  const valid = await evaluateTextPriorWeights(model, prior, data.valid, maxLength, tried, options);
  const values = valid.map((r) => {
    const v = r.metrics[metric];
    if (v === undefined) throw new ValidationError(`text prior: metric ${metric} is not among the evaluated ones (${Object.keys(r.metrics).join(', ')})`);
    return v;
  });
  let best = 0;
  values.forEach((v, i) => {
    if (v > (values[best] as number)) best = i;
  });
  const weight = tried[best] as number;
  const [test] = await evaluateTextPriorWeights(model, prior, data.test, maxLength, [weight], options);
  return {
    weight,
    lastItems: prior.settings.lastItems,
    metric,
    curve: tried.map((w, i) => ({ weight: w, value: values[i] as number })),
    valid: valid[best] as EvaluationResult,
    test: test as EvaluationResult,
  };
}
