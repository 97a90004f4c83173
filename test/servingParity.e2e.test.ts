import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { loadDataset } from '../datasets';
import { ArtifactStore } from '../infra/artifacts';
import { MemoryModelRegistry, type PublishedModel } from '../infra/registry';
import { AppConfig, runEvaluateJob, runRebuildJob, runTrainJob, trainerConfigFromFlags } from '../jobs';
import { AnnConfig, ServingConfig } from '../schemas/serving';
import { loadAnnIndex, type AnnIndex } from '../serving/ann';
import { MemoryHistories } from '../serving/historyView';
import { ModelHolder } from '../serving/modelHolder';
import { ModelVersion } from '../serving/modelVersion';
import { Ranker } from '../serving/ranker';
import { buildServer } from '../serving/server';
import { MetricAccumulator, leaveOneOutSplit } from '../trainer';
import { describeWithDatasets } from '../datasets/testing/realDatasets';

/**
 * Serving gives the answers the offline evaluation scores (issue 17): on Amazon Scientific, a
 * briefly trained model with a tuned text prior; every test user's history sent through the HTTP
 * handler, with the HNSW indexes (forced; 4,385 items would be scored exactly by default). The
 * served top-10 must give the evaluation's Recall@10 and NDCG@10 within 0.002 and agree with
 * exact full ranking on >= 98% of each user's top-10, also with the indexes saved and reloaded.
 * The exact path's native float32 pre-scoring gives the lists of scoring every item in JS.
 */
describeWithDatasets('scientific')('serving parity with the offline evaluation (Amazon Scientific)', () => {
  const root = mkdtempSync(path.join(tmpdir(), 'streamrec-parity-'));
  const config = AppConfig.parse({
    artifacts: { dir: path.join(root, 'artifacts'), registryFile: path.join(root, 'artifacts', 'item-registry.json') },
    trainer: { train: { epochs: 1 } },
  });
  const store = new ArtifactStore(config.artifacts.dir);
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  /** Every test user's served top-10 through the handler, as Recall/NDCG@10 and the lists. */
  async function served(app: FastifyInstance, histories: string[][], targets: string[]): Promise<{ metrics: Record<string, number>; lists: string[][] }> {
    const acc = new MetricAccumulator([10]);
    const lists: string[][] = [];
    for (let u = 0; u < histories.length; u++) {
      const res = await app.inject({ method: 'POST', url: '/v1/recommendations', payload: { history: histories[u], k: 10, excludeSeen: false } });
      if (res.statusCode !== 200) throw new Error(`user ${u}: ${res.statusCode} ${res.body}`);
      const ids = (res.json().items as Array<{ itemId: string }>).map((i) => i.itemId);
      lists.push(ids);
      const rank = ids.indexOf(targets[u] as string);
      acc.add(rank < 0 ? 10 : rank);
    }
    return { metrics: acc.result(), lists };
  }

  it('serves every test user the top-10 the evaluation scores, with HNSW candidates and after the index is reloaded', async () => {
    const dataset = await loadDataset('scientific');
    await runRebuildJob(config, { source: { kind: 'dataset', dataset: 'scientific' } });
    const trainer = trainerConfigFromFlags(config.trainer, 'sasrec', { 'text-prior': '0.5,1', 'text-prior-last': '3' });
    const trained = await runTrainJob({ config, trainer, source: { kind: 'dataset', dataset: 'scientific' }, dataset, writeRows: false });
    expect(trained.textPrior?.weight ?? 0).toBeGreaterThan(0); // the fused path is what is checked
    const checkpoint = trained.checkpointId as string;
    const evaluated = await runEvaluateJob({ config, checkpoint, source: { kind: 'dataset', dataset: 'scientific' }, split: 'test', prior: { kind: 'tuned' }, writeRows: false });

    const registry = new MemoryModelRegistry(async () => ({ modelType: 'sasrec' }));
    const published: PublishedModel = await registry.publish({ checkpointId: checkpoint, evaluation: { split: 'test', metrics: evaluated.result.metrics, users: evaluated.result.users } });
    const versions = {
      hnsw: await ModelVersion.load(store, published, { ann: AnnConfig.parse({ index: 'hnsw' }) }),
      exact: await ModelVersion.load(store, published, { ann: AnnConfig.parse({ index: 'exact' }) }),
    };
    const holders = { hnsw: new ModelHolder(async () => versions.hnsw), exact: new ModelHolder(async () => versions.exact) };
    await holders.hnsw.swapTo(published);
    await holders.exact.swapTo(published);
    const serving = ServingConfig.parse({});
    const apps = { hnsw: buildServer({ config: serving, models: holders.hnsw, histories: new MemoryHistories() }), exact: buildServer({ config: serving, models: holders.exact, histories: new MemoryHistories() }) };
    try {
      expect(versions.hnsw.ranker.exact).toBe(false);
      expect([versions.hnsw.encoder.kind, versions.exact.encoder.kind]).toEqual(['onnx', 'onnx']);
      const split = leaveOneOutSplit(dataset, versions.hnsw.servable.items);
      const external = (dense: number): string => versions.hnsw.servable.items.externalId(dense) as string;
      const histories = Array.from({ length: split.test.count }, (_, u) => Array.from(split.test.items.subarray(split.test.offsets[u] as number, split.test.offsets[u + 1] as number), external));
      const targets = Array.from(split.test.targets, external);
      const viaHnsw = await served(apps.hnsw, histories, targets);
      const viaExact = await served(apps.exact, histories, targets);
      for (const metric of ['recall@10', 'ndcg@10']) {
        expect(Math.abs((viaExact.metrics[metric] as number) - (evaluated.result.metrics[metric] as number))).toBeLessThanOrEqual(0.002);
        expect(Math.abs((viaHnsw.metrics[metric] as number) - (evaluated.result.metrics[metric] as number))).toBeLessThanOrEqual(0.002);
      }
      // The exact ranker rules items out with native float32 cosines (ONNX Runtime) and scores the
      // rest in float64: the same lists, item for item, as scoring every item in JS.
      expect(versions.exact.ranker.stats.approximate).toBeGreaterThan(0);
      expect(versions.exact.ranker.stats.neighbourFills).toBeGreaterThan(0);
      const jsVersion = await ModelVersion.load(store, published, { ann: AnnConfig.parse({ index: 'exact' }), itemScorer: 'js' });
      try {
        const someUsers = histories.slice(0, 2000);
        const viaJs = await jsVersion.recommend(someUsers, 10, someUsers.map(() => new Set()));
        expect(jsVersion.ranker.stats.approximate).toBe(0);
        expect(viaJs.map((list) => list.map((i) => i.itemId))).toEqual(viaExact.lists.slice(0, 2000));
      } finally {
        jsVersion.dispose();
      }
      const overlap = (a: string[][], b: string[][]): number => a.reduce((sum, list, u) => sum + list.filter((id) => b[u]?.includes(id)).length / 10, 0) / a.length;
      expect(overlap(viaHnsw.lists, viaExact.lists)).toBeGreaterThanOrEqual(0.98);

      // The HNSW indexes saved and loaded again rank as the ones built.
      const [modelIndex, textIndex] = (versions.hnsw as unknown as { indexes: AnnIndex[] }).indexes as [AnnIndex, AnnIndex];
      await modelIndex.save(path.join(root, 'model-index'));
      await textIndex.save(path.join(root, 'text-index'));
      const reloaded = { model: await loadAnnIndex(path.join(root, 'model-index')), text: await loadAnnIndex(path.join(root, 'text-index')) };
      const base = versions.hnsw.ranker as unknown as { options: ConstructorParameters<typeof Ranker>[0] };
      const again = new Ranker({ ...base.options, index: reloaded.model, prior: { ...(base.options.prior as NonNullable<typeof base.options.prior>), index: reloaded.text } });
      const users = await versions.hnsw.encoder.encode(versions.hnsw.servable.batchOf(histories.slice(0, 1000)));
      const H = versions.hnsw.servable.model.hiddenSize;
      let same = 0;
      for (let u = 0; u < 1000; u++) {
        const batch = versions.hnsw.servable.batchOf([histories[u] as string[]]);
        const row = batch.items.subarray(0, batch.lengths[0] as number);
        const a = versions.hnsw.ranker.rank(users.subarray(u * H, (u + 1) * H), row, new Set(), 10).ids;
        const b = again.rank(users.subarray(u * H, (u + 1) * H), row, new Set(), 10).ids;
        same += a.filter((id) => b.includes(id)).length / 10;
      }
      expect(same / 1000).toBeGreaterThanOrEqual(0.98);
      reloaded.model.dispose();
      reloaded.text.dispose();
      process.stderr.write(
        `[parity] eval R@10 ${evaluated.result.metrics['recall@10']?.toFixed(4)} N@10 ${evaluated.result.metrics['ndcg@10']?.toFixed(4)}; ` +
          `served exact ${viaExact.metrics['recall@10']?.toFixed(4)} / ${viaExact.metrics['ndcg@10']?.toFixed(4)}, hnsw ${viaHnsw.metrics['recall@10']?.toFixed(4)} / ${viaHnsw.metrics['ndcg@10']?.toFixed(4)}; ` +
          `hnsw vs exact overlap ${overlap(viaHnsw.lists, viaExact.lists).toFixed(4)}, reloaded ${(same / 1000).toFixed(4)}\n`,
      );
    } finally {
      await apps.hnsw.close();
      await apps.exact.close();
      holders.hnsw.close();
      holders.exact.close();
    }
  }, 900_000);
});
