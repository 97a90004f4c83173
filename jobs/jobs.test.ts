import { appendFileSync, cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadDataset } from '../datasets';
import { ArtifactStore } from '../infra/artifacts';
import { openModelRegistry, storeCheckpoints } from '../infra/registry';
import { tf } from '../infra/tf';
import { Instrumentation } from '../instrumentation';
import { writeTinyScientific } from '../test/tinyScientific';
import { MetricAccumulator, leaveOneOutSplit, makeBatch, rankTargets } from '../trainer';
import { AppConfig } from './config';
import { runEvaluateJob } from './evaluate';
import { runFineTuneJob } from './finetune';
import { publishCheckpoint } from './publish';
import { runRebuildJob } from './rebuild';
import { loadServableModel, type ServableModel } from './servable';
import { runTrainJob, type TrainJobResult } from './train';
import { trainerConfigFromFlags } from './trainerFlags';

/**
 * The jobs chained as serving and the live loop chain them, on a tiny dataset in the Scientific
 * layout with small settings: rebuild -> train (CCFRec, text prior tuned) -> load as a servable
 * model -> evaluate -> the catalog grows -> the model scores the new items -> fine-tune -> publish.
 */
describe('jobs: rebuild, train, servable model, grown catalog, evaluate, fine-tune, publish', () => {
  const root = mkdtempSync(path.join(tmpdir(), 'streamrec-jobs-'));
  const data = writeTinyScientific(mkdtempSync(path.join(root, 'data-')));
  const grownData = path.join(root, 'grown');
  const NEW_ITEMS = 5;
  const config = AppConfig.parse({
    artifacts: { dir: path.join(root, 'artifacts'), registryFile: path.join(root, 'artifacts', 'item-registry.json') },
    features: { encoder: 'tfidf-lsa', pcaDims: 8, tfidfLsa: { minDf: 1 } },
    quantizer: { levels: 2, codesPerLevel: 8 },
    trainer: {
      model: { embeddingSize: 8, innerSize: 16, nLayers: 1, nHeads: 2, maxHistoryLength: 8 },
      train: { epochs: 2, batchSize: 64, warmupSteps: 5 },
      eval: { ks: [5, 10], batchSize: 50 },
    },
    modelRegistry: { url: `dir:${path.join(root, 'registry')}` },
  });
  const store = new ArtifactStore(config.artifacts.dir);
  let trained: TrainJobResult;
  let checkpoint: string;

  beforeAll(async () => {
    await runRebuildJob(config, { source: { kind: 'dataset', dataset: data } });
    const trainer = trainerConfigFromFlags(config.trainer, 'ccfrec', { 'text-prior': '0.5,2', 'text-prior-last': '1,3' });
    trained = await runTrainJob({ config, trainer, source: { kind: 'dataset', dataset: data }, writeRows: false });
    checkpoint = trained.checkpointId as string;
    // The same catalog with new items appended (texts like existing ones), no interactions with them.
    cpSync(data, grownData, { recursive: true });
    for (let i = 0; i < NEW_ITEMS; i++) {
      appendFileSync(path.join(grownData, 'Tiny.text'), `NEW${i}\tlamp red kit model${100 + i}. Industrial & Scientific lamp supplies. Brand${i % 4}. \n`);
      appendFileSync(path.join(grownData, 'Tiny.item2index'), `NEW${i}\t${60 + i}\n`);
    }
  }, 120_000);
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  /** Scores of `histories` under a servable model, as plain rows. */
  function scoresOf(servable: ServableModel, histories: string[][]): number[][] {
    return tf.tidy(() => servable.scores(servable.batchOf(histories)).arraySync() as number[][]);
  }

  it('loads a checkpoint as a servable model: typed config, item ids both ways, the tuned prior, histories to batches', async () => {
    const servable = await loadServableModel(store, checkpoint);
    try {
      expect(servable).toMatchObject({ checkpointId: checkpoint, modelType: 'ccfrec', maxHistoryLength: 8, trainedItems: 60, appendedItems: 0, unscoredItems: 0 });
      expect(servable.config.type).toBe('ccfrec');
      // The train job reports the popularity baseline on the same test users and metrics.
      expect(trained.popularity.users).toBe(trained.test.users);
      expect(Object.keys(trained.popularity.metrics).sort()).toEqual(Object.keys(trained.test.metrics).sort());
      expect(servable.config.embeddingSize).toBe(8);
      expect(servable.textPrior).toEqual(trained.textPrior && trained.textPrior.weight > 0 ? { weight: trained.textPrior.weight, lastItems: trained.textPrior.lastItems, pooling: trained.textPrior.pooling } : undefined);
      expect(servable.items.itemCount).toBe(60);
      expect(servable.items.externalId(servable.items.denseId('ITEM7') as number)).toBe('ITEM7');
      expect(servable.lineage.semanticIds).toMatch(/^semantic_ids-/);
      expect(servable.lineage.pca).toMatch(/^pca-/);
      const batch = servable.batchOf([['ITEM1', 'nope', 'ITEM2'], Array.from({ length: 12 }, (_, i) => `ITEM${i}`)]);
      expect(Array.from(batch.lengths)).toEqual([2, 8]);
      expect(Array.from(batch.items.subarray(8, 16))).toEqual(Array.from({ length: 8 }, (_, i) => servable.items.denseId(`ITEM${i + 4}`)));
      expect(() => servable.batchOf([['ITEM1'], ['x', 'y']])).toThrow('history 1: none of its 2 items is in the model\'s catalog (60 items)');
      const rows = scoresOf(servable, [['ITEM1', 'ITEM2']]);
      expect(rows[0]).toHaveLength(61);
    } finally {
      servable.dispose();
    }
  });

  it('scores exactly what the evaluation job ranks: metrics from the servable scores equal evaluate --text-prior tuned', async () => {
    const progress: number[] = [];
    const instrumentation = new Instrumentation();
    instrumentation.on('trainer.progress', (p) => progress.push(p.step));
    const evaluated = await runEvaluateJob({ config, checkpoint, source: { kind: 'dataset', dataset: data }, split: 'test', prior: { kind: 'tuned' }, writeRows: false, instrumentation });
    // trainer.eval is honoured: its cut-offs and batch size (120 users in batches of 50).
    expect(Object.keys(evaluated.result.metrics).sort()).toEqual(['hit@10', 'hit@5', 'mrr@10', 'mrr@5', 'ndcg@10', 'ndcg@5', 'recall@10', 'recall@5']);
    expect(progress).toEqual([50, 100, 120]);
    const servable = await loadServableModel(store, checkpoint);
    try {
      const split = leaveOneOutSplit(await loadDataset(data), servable.items);
      const acc = new MetricAccumulator([5, 10]);
      for (let start = 0; start < split.test.count; start += 50) {
        const indices = Int32Array.from({ length: Math.min(50, split.test.count - start) }, (_, j) => start + j);
        const batch = makeBatch(split.test, indices, servable.maxHistoryLength);
        const ranks = tf.tidy(() => rankTargets(servable.scores(batch), batch.targets).dataSync());
        for (const r of ranks) acc.add(r);
      }
      expect(acc.result()).toEqual(evaluated.result.metrics);
    } finally {
      servable.dispose();
    }
  });

  it('scores items added to the catalog after training, leaving the old items\' scores as they were', async () => {
    const coded = await runRebuildJob(config, { source: { kind: 'dataset', dataset: grownData }, newItemsOnly: true });
    expect(coded.kind === 'new-items' && coded.coded?.newItems).toBe(NEW_ITEMS);
    const before = await loadServableModel(store, checkpoint);
    const after = await loadServableModel(store, checkpoint, { catalog: 'latest' });
    try {
      expect(after).toMatchObject({ trainedItems: 60, appendedItems: NEW_ITEMS });
      expect(after.items.itemCount).toBe(60 + NEW_ITEMS);
      expect(after.items.denseId('NEW0')).toBe(61);
      expect(after.items.denseId('ITEM5')).toBe(before.items.denseId('ITEM5'));
      const histories = [['ITEM0', 'ITEM6', 'ITEM12'], ['ITEM3'], ['ITEM40', 'ITEM41']];
      const old = scoresOf(before, histories);
      const grown = scoresOf(after, histories);
      for (let b = 0; b < histories.length; b++) {
        expect(grown[b]).toHaveLength(66);
        for (let i = 1; i <= 60; i++) expect(grown[b]?.[i]).toBeCloseTo(old[b]?.[i] as number, 5);
        const fresh = (grown[b] ?? []).slice(61);
        expect(fresh.every(Number.isFinite)).toBe(true);
        // Different texts and codes give different scores (not a constant filler).
        expect(new Set(fresh.map((x) => x.toFixed(6))).size).toBeGreaterThan(1);
      }
    } finally {
      before.dispose();
      after.dispose();
    }
  });

  it('fine-tunes the checkpoint on the grown catalog in micro-epochs into a new checkpoint that names its parent', async () => {
    const ends: number[] = [];
    const instrumentation = new Instrumentation();
    instrumentation.on('trainer.micro_epoch_end', (e) => ends.push(e.epoch));
    const tuned = await runFineTuneJob({ store, checkpoint, dataset: await loadDataset(grownData), train: { epochs: 2, batchSize: 64 }, eval: { ks: [10] }, instrumentation });
    expect(ends).toEqual([0, 1]);
    expect(tuned).toMatchObject({ parent: checkpoint, appendedItems: NEW_ITEMS });
    expect(tuned.checkpointId).not.toBe(checkpoint);
    const manifest = (await store.open(tuned.checkpointId)).manifest;
    expect(manifest.producer.job).toBe('streamrec finetune');
    expect(manifest.inputs).toContainEqual(expect.objectContaining({ role: 'parent_checkpoint', artifactId: checkpoint }));
    // It continued the parent's optimizer (moments and step), and its checkpoint goes on from there.
    const stepOf = async (id: string): Promise<number | undefined> => ((await store.open(id)).manifest.settings as { trainingState?: { step: number } }).trainingState?.step;
    const parentStep = (await stepOf(checkpoint)) as number;
    expect(parentStep).toBeGreaterThan(0);
    const trainedSteps = tuned.fit.history.filter((e) => e.epoch <= tuned.fit.bestEpoch).reduce((n, e) => n + e.steps - e.skippedSteps, 0);
    expect(await stepOf(tuned.checkpointId)).toBe(parentStep + trainedSteps);
    const servable = await loadServableModel(store, tuned.checkpointId);
    try {
      // Trained on the grown catalog: nothing appended any more.
      expect(servable).toMatchObject({ trainedItems: 65, appendedItems: 0 });
    } finally {
      servable.dispose();
    }
  }, 60_000);

  it('refuses a catalog rebuilt with a new PCA and codebooks, saying why; its latest catalog stays its own lineage\'s', async () => {
    const before = await loadServableModel(store, checkpoint, { catalog: 'latest' });
    const own = before.lineage;
    before.dispose();
    const other = AppConfig.parse({ ...config, quantizer: { levels: 3, codesPerLevel: 8 } });
    const rebuilt = await runRebuildJob(other, { source: { kind: 'dataset', dataset: grownData } });
    if (rebuilt.kind !== 'full') throw new Error('expected a full rebuild');
    const foreign = { embeddings: rebuilt.result.embeddings.id, semanticIds: rebuilt.result.builds[0]!.semanticIds.id };
    await expect(loadServableModel(store, checkpoint, { catalog: foreign })).rejects.toThrow(/the catalog's text went through PCA pca-[0-9a-f]+, the model was trained on PCA pca-[0-9a-f]+/);
    // The store's latest is now the other rebuild; 'latest' for this model is still its own grown catalog.
    expect((await store.latest('semantic_ids'))?.id).toBe(foreign.semanticIds);
    const after = await loadServableModel(store, checkpoint, { catalog: 'latest' });
    try {
      expect(after.lineage).toEqual(own);
      expect(after.appendedItems).toBe(5);
    } finally {
      after.dispose();
    }
  });

  it('publishes with the evaluation stored at training, and a gate keeps a model that is not better from going live', async () => {
    const registry = openModelRegistry(config.modelRegistry.url, storeCheckpoints(store));
    const first = await publishCheckpoint({ registry, store, checkpoint, reason: 'first' });
    if (!first.published) throw new Error(first.reason);
    const prior = trained.textPrior && trained.textPrior.weight > 0 ? trained.textPrior : undefined;
    expect(first.model.evaluation).toEqual({
      split: 'test',
      metrics: prior ? prior.test.metrics : trained.test.metrics,
      users: 120,
      dataset: 'scientific',
      ...(prior ? { textPrior: { weight: prior.weight, lastItems: prior.lastItems, pooling: prior.pooling } } : {}),
    });
    const worse = { ...first.model.evaluation, metrics: { ...first.model.evaluation.metrics, 'ndcg@10': (first.model.evaluation.metrics['ndcg@10'] as number) - 0.01 } };
    const gated = await publishCheckpoint({ registry, store, checkpoint, evaluation: worse, gate: { metric: 'ndcg@10', minGain: 0 } });
    expect(gated.published).toBe(false);
    expect(!gated.published && gated.reason).toMatch(/ndcg@10 [\d.]+ on test does not reach live version 1's [\d.]+ \+ 0/);
    expect((await registry.live())?.version).toBe(1);
    const tolerated = await publishCheckpoint({ registry, store, checkpoint, evaluation: worse, gate: { metric: 'ndcg@10', minGain: -0.02 } });
    expect(tolerated.published && tolerated.model.version).toBe(2);
    // The prepare step runs only past the gate, with the checkpoint's id, before it goes live; its failure stops the publication.
    const prepared: string[] = [];
    const refused = await publishCheckpoint({ registry, store, checkpoint, evaluation: worse, gate: { metric: 'ndcg@10', minGain: 0.5 }, prepare: async (id) => prepared.push(id) });
    expect([refused.published, prepared]).toEqual([false, []]);
    await expect(
      publishCheckpoint({
        registry,
        store,
        checkpoint,
        prepare: async () => {
          throw new Error('export failed');
        },
      }),
    ).rejects.toThrow('export failed');
    expect((await registry.live())?.version).toBe(2);
    const third = await publishCheckpoint({ registry, store, checkpoint, prepare: async (id) => prepared.push(id) });
    expect([third.published && third.model.version, prepared]).toEqual([3, [checkpoint]]);
  });
});
