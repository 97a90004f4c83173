import type { SequenceExamples } from './data';
import { historyOf } from './data';
import type { EvaluationResult } from './evaluate';
import { MetricAccumulator, rankOfTarget } from './metrics';

/**
 * The popularity baseline: every user gets the same ranking, items by how often they were a
 * training target (each training event but a user's first). What any trained model must beat,
 * and what serving falls back to for a user with no history.
 */

/** How often each item was a training target. `[N + 1]`, index = dense id, 0 (padding) stays 0. */
export function popularityScores(train: SequenceExamples, itemCount: number): Float64Array {
  const counts = new Float64Array(itemCount + 1);
  for (const target of train.targets) if (target >= 1 && target <= itemCount) counts[target] = (counts[target] as number) + 1;
  return counts;
}

/**
 * Full-ranking metrics of one fixed score row for every example, with the trainer's rank rule
 * (ties count against the target) and history exclusion.
 */
export function evaluateFixedScores(scores: ArrayLike<number>, examples: SequenceExamples, options: { readonly ks: readonly number[]; readonly excludeHistory: boolean }): EvaluationResult {
  const started = performance.now();
  const acc = new MetricAccumulator(options.ks);
  for (let i = 0; i < examples.count; i++) {
    const target = examples.targets[i] as number;
    let excluded: Set<number> | undefined;
    if (options.excludeHistory) {
      excluded = new Set(historyOf(examples, i));
      excluded.delete(target);
    }
    acc.add(rankOfTarget(scores, target, excluded));
  }
  return { metrics: acc.result(), users: acc.users, excludeHistory: options.excludeHistory, seconds: (performance.now() - started) / 1000 };
}
