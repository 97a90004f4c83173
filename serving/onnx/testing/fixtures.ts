import { Random } from '../../../random';
import { AdamW, batchIndices, createModel, makeBatch, trainStep, type LeaveOneOutData, type SequenceBatch, type SequentialRecommender } from '../../../trainer';
import { TINY, tinyConfig, tinyData, tinySideInfo, type TinySizes } from '../../../trainer/testing/fixtures';

/**
 * Tiny trained models for the ONNX export tests: 2 layers (or `nLayers`), 2 heads, H = 16, L = 5, over 120 items
 * (enough for a top-10 that means something), trained a few steps so no weight is its init.
 */

export const SIZES: TinySizes = { ...TINY, items: 120 };
export const L = 5;

export interface TrainedFixture {
  readonly model: SequentialRecommender;
  readonly data: LeaveOneOutData;
  readonly sideInfo: ReturnType<typeof tinySideInfo>;
  /** The weights before training, by name. */
  readonly initial: Map<string, Float32Array>;
}

export function trainedModel(type: 'ccfrec' | 'sasrec', steps = 3, nLayers = 2): TrainedFixture {
  const sideInfo = tinySideInfo(1, SIZES);
  const data = tinyData(2, 60, SIZES.items, 9);
  const config = tinyConfig(type, { model: { nLayers, maxHistoryLength: L, ...(type === 'ccfrec' ? { nLayersCross: 1 } : {}) } });
  const model = createModel(config.model, { itemCount: SIZES.items, sideInfo }, new Random(3));
  const initial = new Map([...model.getWeights()].map(([name, w]) => [name, w.values]));
  const optimizer = new AdamW(model.weights, { learningRate: 2e-2, warmupSteps: 0, schedule: 'constant', totalSteps: steps, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 1e-4, weightDecayOn: 'all' });
  const rng = new Random(4);
  const batches = batchIndices(data.train.count, 32, rng);
  for (let s = 0; s < steps; s++) trainStep(model, optimizer, makeBatch(data.train, batches[s] as Int32Array, L), rng);
  optimizer.dispose();
  return { model, data, sideInfo, initial };
}

/** A left-aligned batch of explicit histories (each at most `maxLength` long). */
export function batchOf(histories: ReadonlyArray<readonly number[]>, maxLength = L): SequenceBatch {
  const items = new Int32Array(histories.length * maxLength);
  histories.forEach((h, b) => items.set(h, b * maxLength));
  return { size: histories.length, maxLength, items, lengths: Int32Array.from(histories, (h) => h.length), targets: new Int32Array(histories.length) };
}

/** The `k` best items 1..N of each row of `vectors` `[B, H]` against `table` `[N + 1, H]` (column 0, padding, never ranks). */
export function topK(vectors: Float32Array, table: Float32Array, H: number, k: number): number[][] {
  const B = vectors.length / H;
  const rows = table.length / H;
  const out: number[][] = [];
  for (let b = 0; b < B; b++) {
    const scores: Array<[number, number]> = [];
    for (let i = 1; i < rows; i++) {
      let s = 0;
      for (let h = 0; h < H; h++) s += (vectors[b * H + h] as number) * (table[i * H + h] as number);
      scores.push([i, s]);
    }
    scores.sort((x, y) => y[1] - x[1] || x[0] - y[0]);
    out.push(scores.slice(0, k).map(([i]) => i));
  }
  return out;
}
