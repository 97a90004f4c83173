import { ValidationError } from '../errors';
import { tf } from '../infra/tf';
import { makeBatch, historyOf, type SequenceExamples } from './data';
import { MetricAccumulator } from './metrics';
import type { SequentialRecommender } from './models/contract';
import type { TextPriorPooling } from './config';
import { TextPrior, type ItemTextTables } from './textPrior';

/**
 * Full-ranking evaluation: every item 1..N is a candidate for every user (no sampled negatives),
 * with the rank rule of {@link rankOfTarget} (ties and NaN count against the target).
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
 * 0-based ranks of the targets by the rank rule of {@link rankOfTarget}: the items that compete
 * with row b's target are those left after removing padding (column 0), the target and the
 * `excluded` pairs; the rank is the number of them scored at least the target or NaN, or all of
 * them when the target's score is not finite.
 *
 * @param scores `[B, N + 1]`
 * @param targets `[B]`
 * @returns `[B]` int32
 */
export function rankTargets(scores: tf.Tensor2D, targets: Int32Array, excluded?: Exclusions): tf.Tensor1D {
  return tf.tidy(() => {
    const [B, n1] = scores.shape;
    const extra = excluded?.rows.length ?? 0;
    const indices = new Int32Array((2 * B + extra) * 2);
    for (let b = 0; b < B; b++) {
      indices[2 * b] = b; // (b, 0): padding
      indices[2 * (B + b)] = b; // (b, target)
      indices[2 * (B + b) + 1] = targets[b] as number;
    }
    for (let e = 0; e < extra; e++) {
      indices[2 * (2 * B + e)] = excluded!.rows[e] as number;
      indices[2 * (2 * B + e) + 1] = excluded!.items[e] as number;
    }
    // A 0/1 mask rather than -Infinity added to the scores: NaN + -Infinity is still NaN, and a
    // non-finite target must know how many items compete.
    const removed = tf.scatterND(tf.tensor2d(indices, [2 * B + extra, 2], 'int32'), tf.ones([2 * B + extra]), [B, n1]); // [B, N + 1]: > 0 where removed
    const competes = tf.equal(removed, 0); // [B, N + 1]
    const targetScores = tf.reshape(tf.gatherND(scores, tf.tensor2d(indices.subarray(2 * B, 4 * B), [B, 2], 'int32')), [B, 1]); // [B, 1]
    // NaN is the one value not equal to itself; |x| < Infinity is false for NaN and +/-Infinity.
    const above = tf.logicalOr(tf.greaterEqual(scores, targetScores), tf.notEqual(scores, scores)); // [B, N + 1]
    const targetFinite = tf.reshape(tf.less(tf.abs(targetScores), Number.POSITIVE_INFINITY), [B]); // [B]
    const count = (mask: tf.Tensor): tf.Tensor1D => tf.sum(tf.cast(mask, 'int32'), 1) as tf.Tensor1D; // [B]
    return tf.where(targetFinite, count(tf.logicalAnd(competes, above)), count(competes)) as tf.Tensor1D;
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

/** One ranking to evaluate: the model's scores plus `weight` x `prior` (the model alone without a prior or with weight 0). */
export interface FusedScoring {
  readonly prior?: TextPrior;
  readonly weight: number;
}

/**
 * The full-ranking metrics of several fused rankings (model + w x prior, the priors' own weights
 * ignored) from one pass over the model: what tuning the text prior needs. Each prior is scored
 * once per batch, whatever the number of weights it is tried with.
 */
export async function evaluateFusedRankings(
  model: SequentialRecommender,
  scorings: readonly FusedScoring[],
  examples: SequenceExamples,
  maxLength: number,
  options: Omit<EvaluationOptions, 'textPrior'>,
): Promise<EvaluationResult[]> {
  const started = performance.now();
  const accs = scorings.map(() => new MetricAccumulator(options.ks));
  const table = model.itemTable(); // [N + 1, H], once per evaluation
  try {
    for (let start = 0; start < examples.count; start += options.batchSize) {
      const indices = Int32Array.from({ length: Math.min(options.batchSize, examples.count - start) }, (_, j) => start + j);
      const batch = makeBatch(examples, indices, maxLength);
      const excluded = options.excludeHistory ? exclusionsOf(examples, indices) : undefined;
      const ranks = tf.tidy(() => {
        const scores = model.scoreAllItems(batch, table); // [B, N + 1]
        const priorScores = new Map<TextPrior, tf.Tensor2D>(); // this batch's, released with the tidy
        return scorings.map(({ prior, weight }) => {
          if (!prior || weight === 0) return rankTargets(scores, batch.targets, excluded);
          let text = priorScores.get(prior);
          if (!text) priorScores.set(prior, (text = prior.scores(batch)));
          return rankTargets(tf.add(scores, tf.mul(text, weight)) as tf.Tensor2D, batch.targets, excluded);
        });
      });
      for (let i = 0; i < ranks.length; i++) {
        const r = ranks[i] as tf.Tensor1D;
        const values = await r.data();
        r.dispose();
        for (const v of values) accs[i]?.add(v);
      }
      options.onBatch?.(start + indices.length, examples.count);
      // Lets the event loop run between batches (tfjs-node computes synchronously): a process that
      // also ingests and serves (streamrec run) keeps answering while a window is evaluated.
      await new Promise<void>((resolve) => setImmediate(resolve));
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
  const [result] = await evaluateFusedRankings(model, [prior ? { prior, weight: prior.settings.weight } : { weight: 0 }], examples, maxLength, options);
  return result as EvaluationResult;
}

/** The text prior chosen on the validation split, and what it gives. */
export interface TextPriorTuning {
  /** 0 when the model alone was best. */
  readonly weight: number;
  /** 0 when the model alone was best. */
  readonly lastItems: number;
  /** Undefined when the model alone was best. */
  readonly pooling: TextPriorPooling | undefined;
  /** The validation metric the prior was chosen by, e.g. `ndcg@10`. */
  readonly metric: string;
  /**
   * Every (pooling, lastItems, weight) tried, the model alone first (weight 0, lastItems 0, no
   * pooling): `value` is the chosen-by metric, `metrics` all validation metrics of that setting.
   */
  readonly curve: ReadonlyArray<{
    readonly weight: number;
    readonly lastItems: number;
    readonly pooling: TextPriorPooling | undefined;
    readonly value: number;
    readonly metrics: Readonly<Record<string, number>>;
  }>;
  readonly valid: EvaluationResult;
  readonly test: EvaluationResult;
}

/**
 * Chooses the text prior: the model alone and every (pooling, lastItems, weight) of the grid are
 * scored on `valid` in one pass; the best by `metric` wins (ties: the model alone, then the
 * pooling listed first, fewer items, the smaller weight); `test` is evaluated with it.
 */
export async function tuneTextPrior(
  model: SequentialRecommender,
  info: ItemTextTables,
  data: { readonly valid: SequenceExamples; readonly test: SequenceExamples },
  maxLength: number,
  grid: { readonly weights: readonly number[]; readonly lastItems: readonly number[]; readonly pooling: readonly TextPriorPooling[] },
  metric: string,
  options: Omit<EvaluationOptions, 'textPrior'>,
): Promise<TextPriorTuning> {
  const sorted = (xs: readonly number[]): number[] => [...new Set(xs)].sort((a, b) => a - b);
  const priors = [...new Set(grid.pooling)].flatMap((pooling) => sorted(grid.lastItems).map((lastItems) => new TextPrior(info, { weight: 0, lastItems, pooling })));
  try {
    const scorings: FusedScoring[] = [{ weight: 0 }];
    for (const prior of priors) for (const weight of sorted(grid.weights).filter((w) => w > 0)) scorings.push({ prior, weight });
    const valid = await evaluateFusedRankings(model, scorings, data.valid, maxLength, options);
    const values = valid.map((r) => {
      const v = r.metrics[metric];
      if (v === undefined) throw new ValidationError(`text prior: metric ${metric} is not among the evaluated ones (${Object.keys(r.metrics).join(', ')})`);
      return v;
    });
    let best = 0;
    values.forEach((v, i) => {
      if (v > (values[best] as number)) best = i;
    });
    const chosen = scorings[best] as FusedScoring;
    const [test] = await evaluateFusedRankings(model, [chosen], data.test, maxLength, options);
    return {
      weight: chosen.weight,
      lastItems: chosen.prior?.settings.lastItems ?? 0,
      pooling: chosen.prior?.settings.pooling,
      metric,
      curve: scorings.map((sc, i) => ({
        weight: sc.weight,
        lastItems: sc.prior?.settings.lastItems ?? 0,
        pooling: sc.prior?.settings.pooling,
        value: values[i] as number,
        metrics: (valid[i] as EvaluationResult).metrics,
      })),
      valid: valid[best] as EvaluationResult,
      test: test as EvaluationResult,
    };
  } finally {
    for (const prior of priors) prior.dispose();
  }
}
