import { tf } from '../../infra/tf';
import { Random } from '../../random';
import { makeBatch } from '../data';
import { rankTargets } from '../evaluate';
import { createModel } from '../models';
import { AdamW } from '../optimizer';
import { trainStep } from '../trainStep';
import { TINY, tinyConfig, tinyData, tinySideInfo } from './fixtures';

export interface BackendCheckResult {
  /** d/dtable of sum(gather(table, ids) * w), table [5, 3]. */
  readonly embeddingGradient: number[];
  /** rankTargets on fixed scores with ties, NaN scores, a top-scored padding column and exclusions. */
  readonly ranks: number[];
  /** tf.oneHot([2, 0, 5], 3, 1, 0, float32) and the int32 default. */
  readonly oneHot: { readonly float: number[]; readonly int: number[] };
  readonly models: Record<string, { readonly lossBefore: number; readonly lossAfter: number; readonly applied: boolean; readonly leaked: number }>;
}

/** The same computations on whatever backend is active, for cross-backend comparison. */
export function backendCheck(): BackendCheckResult {
  const embeddingGradient = tf.tidy(() => {
    const table = tf.tensor2d(Array.from({ length: 15 }, (_, i) => i / 10), [5, 3]);
    const ids = tf.tensor1d([1, 2, 2, 4, 0, 2], 'int32');
    const w = tf.tensor2d(Array.from({ length: 18 }, (_, i) => (i % 5) - 2), [6, 3]);
    return Array.from(tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.gather(t, ids), w)))(table).dataSync());
  });
  const oneHot = tf.tidy(() => {
    const ids = tf.tensor1d([2, 0, 5], 'int32');
    return { float: Array.from(tf.oneHot(ids, 3, 1, 0, 'float32').dataSync()), int: Array.from(tf.oneHot(ids, 3).dataSync()) };
  });
  const ranks = tf.tidy(() => {
    const withNaN = [NaN, 0.2, NaN, 0.4, 0.2, 0.1, 0.2];
    const scores = tf.tensor2d([9, 0.5, 0.9, 0.7, 0.9, 0.1, 0.9, 5, 0.2, 0.2, 0.2, 0.3, 0.2, 0.1, ...withNaN, ...withNaN], [4, 7]);
    const r = rankTargets(scores, Int32Array.from([4, 3, 1, 2]), { rows: Int32Array.from([0, 1]), items: Int32Array.from([2, 5]) });
    return Array.from(r.dataSync());
  });
  const data = tinyData();
  const batch = makeBatch(data.train, Int32Array.from({ length: 16 }, (_, i) => i * 3), 5);
  const models: Record<string, { lossBefore: number; lossAfter: number; applied: boolean; leaked: number }> = {};
  for (const type of ['sasrec', 'ccfrec'] as const) {
    const config = tinyConfig(type, { model: { dropoutProb: 0, ...(type === 'ccfrec' ? { dropoutProbCross: 0 } : {}) } });
    const model = createModel(config.model, { itemCount: TINY.items, sideInfo: tinySideInfo() }, new Random(1));
    const optimizer = new AdamW(model.weights, { learningRate: 5e-3, warmupSteps: 0, schedule: 'constant', totalSteps: 10, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 1e-4, weightDecayOn: 'all' });
    const loss = (): number => tf.tidy(() => model.computeLoss(batch, new Random(4)).total.dataSync()[0] as number);
    const lossBefore = loss();
    trainStep(model, optimizer, batch, new Random(4));
    const tensors = tf.memory().numTensors;
    const outcome = trainStep(model, optimizer, batch, new Random(5));
    const leaked = tf.memory().numTensors - tensors;
    models[type] = { lossBefore, lossAfter: loss(), applied: outcome.applied, leaked };
    optimizer.dispose();
    model.dispose();
  }
  return { embeddingGradient, oneHot, ranks, models };
}
