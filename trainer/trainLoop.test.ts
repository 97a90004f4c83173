import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { AbortedError } from '../errors';
import { ArtifactStore } from '../infra/artifacts';
import { initTf, tf } from '../infra/tf';
import { Random } from '../random';
import { loadCheckpoint } from './checkpoint';
import { evaluateFullRanking } from './evaluate';
import { trainAndEvaluate } from './experiment';
import { createModel } from './models';
import type { SequentialRecommender } from './models/contract';
import { InMemoryObserver, type TrainingProgress } from './observer';
import { itemIdMappingFromList } from './sideInfo';
import { TINY, tinyConfig, tinyData, tinyDataset, tinySideInfo } from './testing/fixtures';
import { fitModel } from './trainLoop';
import { TrainingError } from './trainStep';

let root: string;

beforeAll(async () => {
  await initTf();
  root = await mkdtemp(path.join(tmpdir(), 'streamrec-train-'));
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const dataset = tinyDataset();
const itemIds = itemIdMappingFromList(dataset.items.map((i) => i.itemId));
const sideInfo = tinySideInfo();

describe.each(['sasrec', 'ccfrec'] as const)('%s end to end on the tiny fixture', (type) => {
  const EPOCHS = 4;
  it('trains, evaluates with full ranking, writes a checkpoint and reports every row', async () => {
    const store = new ArtifactStore(path.join(root, type));
    const observer = new InMemoryObserver();
    const progress: TrainingProgress[] = [];
    const tensorsBefore = tf.memory().numTensors;
    const result = await trainAndEvaluate({
      dataset,
      itemIds,
      sideInfo,
      store,
      observer,
      onProgress: (p) => progress.push(p),
      runId: `run-${type}`,
      config: tinyConfig(type, { train: { epochs: EPOCHS, batchSize: 32, learningRate: 2e-2 }, model: { dropoutProb: 0.1, ...(type === 'ccfrec' ? { dropoutProbCross: 0.1 } : {}) } }),
    });
    expect(tf.memory().numTensors).toBe(tensorsBefore);
    expect(result.data).toMatchObject({ itemCount: TINY.items, train: 200, valid: 40, test: 40 });
    expect(result.fit.status).toBe('completed');
    expect(result.fit.epochs).toBe(EPOCHS);

    // Observer rows.
    expect(observer.runs).toHaveLength(1);
    expect(observer.runs[0]).toMatchObject({ runId: `run-${type}`, model: type, backend: (await initTf()).backend, trainExamples: 200 });
    expect(observer.runs[0]!.artifacts).toEqual(type === 'ccfrec' ? { semanticIds: 'semantic_ids-0123456789abcdef', 'textEmbeddings.meta': 'embeddings-0123456789abcdef' } : {});
    expect(observer.epochs.map((e) => e.epoch)).toEqual(Array.from({ length: EPOCHS }, (_, i) => i));
    const parts = type === 'ccfrec' ? ['cl', 'mlm', 'rec', 'total'] : ['rec', 'total'];
    for (const e of observer.epochs) {
      expect(Object.keys(e.loss).sort()).toEqual(parts);
      expect(e.samplesPerSecond).toBeGreaterThan(0);
      expect(e.steps).toBe(7);
      expect(e.skippedSteps).toBe(0);
    }
    expect(observer.epochs[EPOCHS - 1]!.loss.rec).toBeLessThan(observer.epochs[0]!.loss.rec as number);
    const valid = observer.evaluations.filter((r) => r.split === 'valid');
    const test = observer.evaluations.filter((r) => r.split === 'test');
    expect(valid).toHaveLength(EPOCHS * 16);
    expect(test).toHaveLength(16);
    expect(new Set(test.map((r) => `${r.metric}@${r.k}`))).toEqual(new Set(Object.keys(result.test.metrics)));
    for (const r of [...valid, ...test]) {
      expect(r.excludeHistory).toBe(false);
      expect(r.usersEvaluated).toBe(40);
    }
    expect(test[0]!.modelVersion).toBe(result.checkpointId);
    expect(valid[0]!.modelVersion).toBe(`run-${type}:epoch-0`);
    expect(observer.ends).toEqual([expect.objectContaining({ status: 'completed', checkpointId: result.checkpointId, bestEpoch: result.fit.bestEpoch })]);
    expect(progress.some((p) => p.phase === 'train' && p.step === 7 && p.loss !== undefined)).toBe(true);
    expect(progress.some((p) => p.phase === 'evaluate')).toBe(true);

    // SASRec learns the walk within 4 epochs: far better than chance (Recall@10 = 1/3 at random). CCFRec,
    // which sees items only through random codes and random text here, learns it more slowly (it
    // does within ~10 epochs); its learning is asserted step-wise in models.test.ts.
    if (type === 'sasrec') expect(result.test.metrics['recall@10']).toBeGreaterThan(0.5);
    expect(result.fit.bestValid['ndcg@10']).toBe(Math.max(...valid.filter((r) => r.metric === 'ndcg' && r.k === 10).map((r) => r.value)));

    // The checkpoint holds the evaluated (best) weights: reloading reproduces the test metrics.
    const loaded = await loadCheckpoint(store, result.checkpointId!, { sideInfo, modelType: type });
    const data = tinyData();
    const again = await evaluateFullRanking(loaded.model, data.test, 5, { ks: [5, 10, 20, 50], excludeHistory: false, batchSize: 16 });
    expect(again.metrics).toEqual(result.test.metrics);
    expect(loaded.artifact.manifest.metrics).toMatchObject({ test: result.test.metrics, excludeHistory: false });
    loaded.model.dispose();
  });
});

/** Delegates to a real model, but its loss is NaN. */
function nanModel(inner: SequentialRecommender): SequentialRecommender {
  return {
    modelType: inner.modelType,
    config: inner.config,
    itemCount: inner.itemCount,
    hiddenSize: inner.hiddenSize,
    weights: inner.weights,
    encodeSequences: (b) => inner.encodeSequences(b),
    computeLoss: (b, rng) => {
      const loss = inner.computeLoss(b, rng);
      const nan = tf.mul(loss.total, Number.NaN) as tf.Scalar;
      return { total: nan, parts: { rec: nan } };
    },
    itemTable: () => inner.itemTable(),
    itemTableRows: (start, end) => inner.itemTableRows(start, end),
    tokenTable: () => inner.tokenTable(),
    scoreAllItems: (b, t) => inner.scoreAllItems(b, t),
    trainableVariables: () => inner.trainableVariables(),
    getWeights: () => inner.getWeights(),
    setWeights: (v) => inner.setWeights(v),
    dispose: () => inner.dispose(),
  };
}

describe('fitModel', () => {
  const data = tinyData();

  it('stops early after `earlyStopPatience` evaluations without gain and restores the best weights', async () => {
    const config = tinyConfig('sasrec', { train: { epochs: 20, earlyStopPatience: 2, learningRate: 0.05 }, eval: { excludeHistory: true } });
    const model = createModel(config.model, { itemCount: TINY.items }, new Random(1));
    const observer = new InMemoryObserver();
    const fit = await fitModel({ model, data, maxHistoryLength: 5, train: config.train, eval: config.eval, rng: new Random(2), runId: 'es', observer });
    expect(fit.status).toBe('early_stopped');
    expect(fit.epochs).toBeLessThan(20);
    const ndcg = observer.evaluations.filter((r) => r.metric === 'ndcg' && r.k === 10).map((r) => r.value);
    expect(ndcg).toHaveLength(fit.epochs);
    expect(fit.epochs - 1 - fit.bestEpoch).toBe(2);
    expect(observer.evaluations.every((r) => r.excludeHistory)).toBe(true);
    const now = await evaluateFullRanking(model, data.valid, 5, { ks: config.eval.ks, excludeHistory: true, batchSize: 16 });
    expect(now.metrics).toEqual(fit.bestValid);
    // The optimizer state goes with the best weights (what micro-epochs continue), not the last epoch's.
    const stepsToBest = observer.epochs.filter((e) => e.epoch <= fit.bestEpoch).reduce((n, e) => n + e.steps - e.skippedSteps, 0);
    expect(fit.optimizerState.step).toBe(stepsToBest);
    model.dispose();
  });

  it('skips steps whose gradients are not finite and aborts after maxNonFiniteSteps in a row, weights untouched', async () => {
    const config = tinyConfig('sasrec', { train: { maxNonFiniteSteps: 3 } });
    const inner = createModel(config.model, { itemCount: TINY.items }, new Random(1));
    const before = inner.getWeights();
    const tensors = tf.memory().numTensors;
    const run = fitModel({ model: nanModel(inner), data, maxHistoryLength: 5, train: config.train, eval: config.eval, rng: new Random(2), runId: 'nan' });
    await expect(run).rejects.toBeInstanceOf(TrainingError);
    await expect(
      fitModel({ model: nanModel(inner), data, maxHistoryLength: 5, train: config.train, eval: config.eval, rng: new Random(2), runId: 'nan' }),
    ).rejects.toThrow(/3 consecutive steps had non-finite gradients \(limit train\.maxNonFiniteSteps = 3\)/);
    expect(tf.memory().numTensors).toBe(tensors);
    for (const [name, w] of inner.getWeights()) expect(Array.from(w.values)).toEqual(Array.from(before.get(name)!.values));
    inner.dispose();
  });

  it('stops on an abort signal, and refuses a validation metric whose k is not evaluated', async () => {
    const config = tinyConfig('sasrec');
    const model = createModel(config.model, { itemCount: TINY.items }, new Random(1));
    const controller = new AbortController();
    controller.abort();
    await expect(fitModel({ model, data, maxHistoryLength: 5, train: config.train, eval: config.eval, rng: new Random(2), runId: 'abort', signal: controller.signal })).rejects.toBeInstanceOf(AbortedError);
    await expect(
      fitModel({ model, data, maxHistoryLength: 5, train: { ...config.train, validMetric: 'ndcg@7' }, eval: config.eval, rng: new Random(2), runId: 'bad' }),
    ).rejects.toThrow(/validMetric ndcg@7 needs k=7 in eval\.ks/);
    model.dispose();
  });

  it('waits after each step while `pause` holds it, and goes on when it lets go', async () => {
    const config = tinyConfig('sasrec');
    const model = createModel(config.model, { itemCount: TINY.items }, new Random(1));
    let release = (): void => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    let pauses = 0;
    let finished = false;
    const fit = fitModel({ model, data, maxHistoryLength: 5, train: { ...config.train, epochs: 3 }, eval: config.eval, rng: new Random(2), runId: 'paused', pause: () => (pauses++, held) }).then((r) => {
      finished = true;
      return r;
    });
    // Held: the first step's pause reached, no further step.
    for (let i = 0; i < 50 && pauses === 0; i++) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 100));
    expect([pauses, finished]).toEqual([1, false]);
    release();
    const result = await fit;
    expect(result.epochs).toBeGreaterThan(1);
    expect(pauses).toBeGreaterThanOrEqual(result.epochs);
    model.dispose();
  });
});
