import { ValidationError } from '../../errors';
import { initTf, tf } from '../../infra/tf';
import { Random } from '../../random';
import { makeBatch } from '../data';
import { evaluateFullRanking } from '../evaluate';
import { AdamW } from '../optimizer';
import { TINY, tinyConfig, tinyData, tinySideInfo } from '../testing/fixtures';
import { TextPrior } from '../textPrior';
import { trainStep } from '../trainStep';
import { createModel } from '.';
import { hostItemTable, type SequentialRecommender } from './contract';

beforeAll(async () => {
  await initTf();
});

const data = tinyData();
const sideInfo = tinySideInfo();
const batch = makeBatch(data.train, Int32Array.from({ length: 16 }, (_, i) => i * 5), 5);

function build(type: 'ccfrec' | 'sasrec', model: Record<string, unknown> = {}, seed = 1): SequentialRecommender {
  return createModel(tinyConfig(type, { model }).model, { itemCount: TINY.items, sideInfo }, new Random(seed));
}

function optimizerFor(model: SequentialRecommender, learningRate = 5e-3): AdamW {
  return new AdamW(model.weights, { learningRate, warmupSteps: 0, schedule: 'constant', totalSteps: 100, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 1e-4, weightDecayOn: 'all' });
}

function lossOf(model: SequentialRecommender, seed: number): Record<string, number> {
  return tf.tidy(() => {
    const r = model.computeLoss(batch, new Random(seed));
    return Object.fromEntries([['total', r.total.dataSync()[0] as number], ...Object.entries(r.parts).map(([k, v]) => [k, v.dataSync()[0] as number])]);
  });
}

describe.each(['sasrec', 'ccfrec'] as const)('%s', (type) => {
  it('encodes sequences to [B, H], items to a normalised [N + 1, H] table, and scores [B, N + 1] as cosines', () => {
    const model = build(type);
    const H = TINY.dims;
    tf.tidy(() => {
      const seq = model.encodeSequences(batch);
      expect(seq.shape).toEqual([16, H]);
      const table = model.itemTable();
      expect(table.shape).toEqual([TINY.items + 1, H]);
      for (const n of tf.norm(table, 2, 1).dataSync()) expect(n).toBeCloseTo(1, 5);
      const scores = model.scoreAllItems(batch, table);
      expect(scores.shape).toEqual([16, TINY.items + 1]);
      const expected = tf.matMul(tf.div(seq, tf.norm(seq, 2, 1, true)), table, false, true).dataSync();
      scores.dataSync().forEach((v, i) => expect(v).toBeCloseTo(expected[i] as number, 5));
      // Inference is deterministic (no dropout).
      expect(Array.from(model.encodeSequences(batch).dataSync())).toEqual(Array.from(seq.dataSync()));
    });
    model.dispose();
  });

  it('computes any rows of the item table alone, and the whole table a slice at a time, with the same numbers', async () => {
    const model = build(type);
    const full = tf.tidy(() => Array.from(model.itemTable().dataSync()));
    const H = TINY.dims;
    const rows = tf.tidy(() => Array.from(model.itemTableRows(3, 11).dataSync()));
    full.slice(3 * H, 11 * H).forEach((v, i) => expect(rows[i]).toBeCloseTo(v, 6)); // off the chunk grid: float rounding
    expect(Array.from(await hostItemTable(model))).toEqual(full);
    await expect(hostItemTable(model, 7)).rejects.toThrow(/rowsPerSlice must be a multiple of 1024, got 7/);
    expect(() => model.itemTableRows(5, 5)).toThrow(/expected integers 0 <= start < end <= \d+, got 5..5/);
    expect(() => model.itemTableRows(0, TINY.items + 2)).toThrow(ValidationError);
    model.dispose();
  });

  it('computes finite loss parts; the same seeds give the same loss', () => {
    const model = build(type);
    const loss = lossOf(model, 3);
    const expectedParts = type === 'ccfrec' ? ['cl', 'mlm', 'rec', 'total'] : ['rec', 'total'];
    expect(Object.keys(loss).sort()).toEqual(expectedParts);
    for (const v of Object.values(loss)) expect(Number.isFinite(v) && v > 0).toBe(true);
    if (type === 'ccfrec') expect(loss.total).toBeCloseTo((loss.rec as number) + 0.1 * (loss.mlm as number) + 0.1 * (loss.cl as number), 4);
    const twin = build(type);
    expect(lossOf(twin, 3)).toEqual(loss);
    model.dispose();
    twin.dispose();
  });

  it('one training step lowers the loss on the tiny fixture', () => {
    const model = build(type, { dropoutProb: 0, ...(type === 'ccfrec' ? { dropoutProbCross: 0 } : {}) });
    const optimizer = optimizerFor(model);
    const before = lossOf(model, 4);
    const outcome = trainStep(model, optimizer, batch, new Random(4));
    expect(outcome.applied).toBe(true);
    expect(outcome.loss.total).toBeCloseTo(before.total as number, 5);
    expect(Number.isFinite(outcome.gradNorm) && outcome.gradNorm > 0).toBe(true);
    const after = lossOf(model, 4);
    expect(after.total).toBeLessThan(before.total as number);
    expect(after.rec).toBeLessThan(before.rec as number);
    optimizer.dispose();
    model.dispose();
  });

  it('keeps the tensor count flat across training steps and evaluation batches', async () => {
    const base = tf.memory().numTensors;
    const model = build(type);
    const optimizer = optimizerFor(model);
    const rng = new Random(5);
    trainStep(model, optimizer, batch, rng);
    const start = tf.memory().numTensors;
    for (let s = 0; s < 3; s++) trainStep(model, optimizer, makeBatch(data.train, Int32Array.from({ length: 8 }, (_, i) => s * 8 + i), 5), rng);
    expect(tf.memory().numTensors).toBe(start);
    const result = await evaluateFullRanking(model, data.valid, 5, { ks: [5, 10], excludeHistory: true, batchSize: 7 });
    expect(result.users).toBe(data.valid.count);
    expect(tf.memory().numTensors).toBe(start);
    optimizer.dispose();
    model.dispose();
    expect(tf.memory().numTensors).toBe(base);
  });

  it('supports a full softmax when negNum reaches the catalog size', () => {
    const model = build(type, { negNum: TINY.items });
    const loss = lossOf(model, 6);
    expect(Number.isFinite(loss.rec as number)).toBe(true);
    // Full softmax over 30 items is harder than 1 positive against 10 negatives.
    const sampled = build(type, { negNum: 10 });
    expect(loss.rec).toBeGreaterThan(lossOf(sampled, 6).rec as number);
    model.dispose();
    sampled.dispose();
  });
});

describe('ccfrec specifics', () => {
  it('never trains the mask/padding code row or the frozen text tables', () => {
    const model = build('ccfrec');
    const mask = model.weights.find((w) => w.name === 'codeEmbedding.maskToken')!;
    const codes = model.weights.find((w) => w.name === 'codeEmbedding.codes')!;
    expect(mask.trainable).toBe(false);
    expect(model.trainableVariables()).not.toContain(mask.variable);
    expect(model.weights.some((w) => w.name.includes('text'))).toBe(false);
    const maskBefore = Array.from(mask.variable.dataSync());
    const codesBefore = Array.from(codes.variable.dataSync());
    const optimizer = optimizerFor(model);
    trainStep(model, optimizer, batch, new Random(7));
    expect(Array.from(mask.variable.dataSync())).toEqual(maskBefore);
    expect(Array.from(codes.variable.dataSync())).not.toEqual(codesBefore);
    // The text tables are the side information's, unchanged: the item table is a function of the weights alone.
    const twin = build('ccfrec');
    twin.setWeights(model.getWeights());
    tf.tidy(() => expect(Array.from(twin.itemTable().dataSync())).toEqual(Array.from(model.itemTable().dataSync())));
    optimizer.dispose();
    model.dispose();
    twin.dispose();
  });

  it('skips the masked view when both auxiliary weights are 0', () => {
    const model = build('ccfrec', { mlmWeight: 0, clWeight: 0 });
    const loss = lossOf(model, 8);
    expect(loss.mlm).toBe(0);
    expect(loss.cl).toBe(0);
    expect(loss.total).toBeCloseTo(loss.rec as number, 6);
    model.dispose();
  });

  it('rejects text embeddings whose width is not embeddingSize, naming the field', () => {
    expect(() => createModel(tinyConfig('ccfrec', { model: { embeddingSize: 8 } }).model, { itemCount: TINY.items, sideInfo }, new Random(1))).toThrow(ValidationError);
    expect(() => createModel(tinyConfig('ccfrec', { model: { embeddingSize: 8 } }).model, { itemCount: TINY.items, sideInfo }, new Random(1))).toThrow(/text field "meta" has 16 dimensions, embeddingSize is 8/);
  });
});

describe('CCFRec trained over the text prior (textPriorWeight > 0)', () => {
  it.each([
    ['sampled negatives', 8],
    ['a full softmax', 1000],
  ])('scores as cosine + w x prior, learns with %s, and leaks no tensors', async (_name, negNum) => {
    const base = tf.memory().numTensors;
    const plain = build('ccfrec', { negNum, dropoutProb: 0, dropoutProbCross: 0 }, 7);
    const model = build('ccfrec', { negNum, dropoutProb: 0, dropoutProbCross: 0, textPriorWeight: 0.5, textPriorLastItems: 2 }, 7);
    const prior = new TextPrior(sideInfo, { weight: 0.5, lastItems: 2, pooling: 'max' }); // the model's default pooling
    // Same seed, same weights: the scores differ by exactly w x prior.
    const [withPrior, expected] = tf.tidy(() => [model.scoreAllItems(batch).arraySync(), prior.fuse(plain.scoreAllItems(batch), batch).arraySync()]);
    expect(withPrior).toEqual(expected);
    // The prior enters the loss: the two models' recommendation losses differ at equal weights.
    expect(lossOf(model, 4).rec).not.toBeCloseTo(lossOf(plain, 4).rec as number, 3);
    const optimizer = optimizerFor(model);
    const before = lossOf(model, 4);
    const start = tf.memory().numTensors;
    trainStep(model, optimizer, batch, new Random(4));
    trainStep(model, optimizer, batch, new Random(5));
    expect(tf.memory().numTensors).toBe(start);
    expect(lossOf(model, 4).rec).toBeLessThan(before.rec as number);
    await evaluateFullRanking(model, data.valid, 5, { ks: [5, 10], excludeHistory: false, batchSize: 7 });
    expect(tf.memory().numTensors).toBe(start);
    optimizer.dispose();
    prior.dispose();
    plain.dispose();
    model.dispose();
    expect(tf.memory().numTensors).toBe(base);
  });
});
