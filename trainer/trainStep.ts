import { StreamrecError } from '../errors';
import { tf } from '../infra/tf';
import type { Random } from '../random';
import type { SequenceBatch } from './data';
import type { SequentialRecommender } from './models/contract';
import type { AdamW } from './optimizer';

/** Training could not go on (e.g. gradients stayed non-finite). Not retriable. */
export class TrainingError extends StreamrecError {
  override readonly code = 'training';
}

export interface StepOutcome {
  /** False when a gradient was not finite and the update was skipped. */
  readonly applied: boolean;
  /** `total` and every loss part, as numbers. */
  readonly loss: Readonly<Record<string, number>>;
  /** Global L2 norm of the gradients (non-finite when the step was skipped). */
  readonly gradNorm: number;
}

/**
 * One optimisation step: loss and gradients of all trainable weights, a finiteness check of the
 * global gradient norm, then the AdamW update (skipped when the norm is not finite). Every
 * tensor it makes is released before it returns; the only host reads are the loss parts and the
 * norm, packed into one small tensor.
 */
export function trainStep(model: SequentialRecommender, optimizer: AdamW, batch: SequenceBatch, rng: Random): StepOutcome {
  let parts: Record<string, tf.Scalar> = {};
  try {
    return tf.tidy(() => {
      const { value, grads } = tf.variableGrads(() => {
        const result = model.computeLoss(batch, rng);
        // Parts are kept past the gradient tape's own tidy; released in `finally`.
        parts = Object.fromEntries(Object.entries(result.parts).map(([k, v]) => [k, tf.keep(v)]));
        return result.total;
      }, optimizer.variables());
      const names = Object.keys(parts);
      const squares = tf.addN(Object.values(grads).map((g) => tf.sum(tf.square(g)))); // scalar
      const packed = tf.stack([value, ...names.map((n) => parts[n] as tf.Scalar), squares]).dataSync();
      const loss: Record<string, number> = { total: packed[0] as number };
      names.forEach((n, i) => (loss[n] = packed[i + 1] as number));
      const gradNorm = Math.sqrt(packed[names.length + 1] as number);
      const applied = Number.isFinite(gradNorm) && Number.isFinite(loss.total as number);
      if (applied) optimizer.apply(grads);
      return { applied, loss, gradNorm };
    });
  } finally {
    for (const t of Object.values(parts)) t.dispose();
  }
}
