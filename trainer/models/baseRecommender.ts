import { ValidationError } from '../../errors';
import { tf } from '../../infra/tf';
import type { Random } from '../../random';
import type { ModelConfig, ModelType } from '../config';
import type { SequenceBatch } from '../data';
import { l2Normalize } from '../layers/dense';
import type { NamedWeight, WeightValues } from '../layers/params';
import type { LossResult, SequentialRecommender } from './contract';

/** What both models share: weights bookkeeping, scoring against an item table, disposal. */
export abstract class BaseRecommender implements SequentialRecommender {
  abstract readonly modelType: ModelType;
  abstract readonly config: ModelConfig;
  abstract readonly itemCount: number;
  abstract readonly hiddenSize: number;
  abstract readonly weights: readonly NamedWeight[];

  abstract encodeSequences(batch: SequenceBatch): tf.Tensor2D;
  abstract computeLoss(batch: SequenceBatch, rng: Random): LossResult;
  abstract itemTable(): tf.Tensor2D;
  abstract itemTableRows(start: number, end: number): tf.Tensor2D;
  abstract tokenTable(): tf.Tensor2D;

  /** Tensors the model holds besides its weights (frozen inputs). */
  protected constants(): tf.Tensor[] {
    return [];
  }

  scoreAllItems(batch: SequenceBatch, itemTable?: tf.Tensor2D): tf.Tensor2D {
    return tf.tidy(() => {
      const table = itemTable ?? this.itemTable(); // [N + 1, H]
      const sequences = l2Normalize(this.encodeSequences(batch)); // [B, H]
      return tf.matMul(sequences, table, false, true); // [B, N + 1]
    });
  }

  trainableVariables(): tf.Variable[] {
    return this.weights.filter((w) => w.trainable).map((w) => w.variable);
  }

  getWeights(): Map<string, WeightValues> {
    const out = new Map<string, WeightValues>();
    for (const w of this.weights) out.set(w.name, { shape: w.variable.shape.slice(), values: Float32Array.from(w.variable.dataSync() as Float32Array) });
    return out;
  }

  setWeights(values: ReadonlyMap<string, WeightValues>): void {
    const known = new Set(this.weights.map((w) => w.name));
    const unknown = [...values.keys()].filter((k) => !known.has(k));
    if (unknown.length > 0) throw new ValidationError(`setWeights: unknown weights ${unknown.join(', ')} for a ${this.modelType} model`);
    for (const w of this.weights) {
      const v = values.get(w.name);
      if (!v) throw new ValidationError(`setWeights: missing weight ${w.name}`, { context: { field: w.name } });
      if (v.shape.length !== w.variable.shape.length || v.shape.some((d, i) => d !== w.variable.shape[i])) {
        throw new ValidationError(`setWeights: weight ${w.name} has shape [${v.shape.join(', ')}], the model expects [${w.variable.shape.join(', ')}]`, {
          context: { field: w.name },
        });
      }
    }
    for (const w of this.weights) {
      const v = values.get(w.name) as WeightValues;
      tf.tidy(() => w.variable.assign(tf.tensor(v.values, v.shape, 'float32')));
    }
  }

  dispose(): void {
    for (const w of this.weights) w.variable.dispose();
    for (const t of this.constants()) t.dispose();
  }
}
