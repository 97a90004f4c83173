import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { loadDataset } from '../datasets';
import { ArtifactStore } from '../infra/artifacts';
import { MemoryModelRegistry, type PublishEvaluation, type PublishedModel } from '../infra/registry';
import { AppConfig, runRebuildJob, runTrainJob, trainerConfigFromFlags } from '../jobs';
import { codeNewItems } from '../quantizer/rebuild';
import type { ItemEvent } from '../schemas/events';
import { AnnConfig, ServingConfig } from '../schemas/serving';
import { tinyStoresConfig, writeTinyScientific } from '../test/tinyScientific';
import { latestGrownCatalog } from '../trainer';
import { CatalogFollower } from './catalogFollower';
import { MemoryHistories } from './historyView';
import { ModelHolder } from './modelHolder';
import { ModelVersion } from './modelVersion';
import { buildServer } from './server';

/**
 * A catalog that grows under a served model (items coded with its codebooks between rebuilds),
 * on a tiny CCFRec with a tuned text prior and HNSW indexes (the exact threshold at 0): the new
 * item joins the served HNSW catalog and is recommended where it belongs, with k far below the
 * catalog; a grown catalog that fails to load is retried after a backoff, without marking the
 * serving version failed; a full rebuild of another lineage, or any catalog under a SASRec
 * model, loads nothing.
 */
describe('grown catalogs under a served model', () => {
  const root = mkdtempSync(path.join(tmpdir(), 'streamrec-catalog-'));
  const data = writeTinyScientific(mkdtempSync(path.join(root, 'data-')));
  const raw = {
    ...tinyStoresConfig(root),
  };
  const config = AppConfig.parse(raw);
  const store = new ArtifactStore(config.artifacts.dir);
  const source = { kind: 'dataset' as const, dataset: data };
  const EVAL: PublishEvaluation = { split: 'test', metrics: { 'ndcg@10': 0.1 }, users: 10 };
  // HNSW at any size: the path a large catalog takes.
  const ann = AnnConfig.parse({ exactBelow: 0, hnsw: { m: 8, efConstruction: 40 } });
  const registry = new MemoryModelRegistry(async () => ({ modelType: 'ccfrec' }));
  /** Loads that fail next (the grown catalog's load, when the test says so). */
  let failLoads = 0;
  const holder = new ModelHolder(async (published) => {
    if (failLoads > 0) {
      failLoads--;
      throw new Error('injected: the grown catalog cannot be read');
    }
    return ModelVersion.load(store, published, { ann });
  });
  let clock = 1_000_000;
  const follower = new CatalogFollower(store, holder, { prepareWaitMs: 0, retryMs: 1000, now: () => clock });
  let app: FastifyInstance;
  let catalog: ItemEvent[];
  let ownSemanticIds: string;
  let published: PublishedModel;

  beforeAll(async () => {
    const rebuilt = await runRebuildJob(config, { source });
    if (rebuilt.kind !== 'full') throw new Error('expected a full rebuild');
    ownSemanticIds = rebuilt.result.builds[0]!.semanticIds.id;
    const trainer = trainerConfigFromFlags(config.trainer, 'ccfrec', { 'text-prior': '1', 'text-prior-last': '2' });
    const checkpoint = (await runTrainJob({ config, trainer, source, writeRows: false })).checkpointId as string;
    catalog = [...(await loadDataset(data)).items];
    published = await registry.publish({ checkpointId: checkpoint, evaluation: EVAL });
    expect((await holder.syncWith(registry)).kind).toBe('swapped');
    app = buildServer({ config: ServingConfig.parse({}), models: holder, histories: new MemoryHistories() });
    await app.ready();
  }, 120_000);
  afterAll(async () => {
    await app.close();
    await holder.close();
    rmSync(root, { recursive: true, force: true });
  });

  const post = async (history: string[], k: number): Promise<string[]> => {
    const res = await app.inject({ method: 'POST', url: '/v1/recommendations', payload: { history, k } });
    expect(res.statusCode).toBe(200);
    return (res.json().items as Array<{ itemId: string }>).map((i) => i.itemId);
  };

  it('serves a newly coded item from the HNSW-indexed catalog: among the nearest items of its nearest item and recommended in a top 5 of 61; a failed load is retried after a backoff', async () => {
    expect(await follower.check()).toEqual({ kind: 'current' });
    expect(holder.current?.ranker.exact).toBe(false);
    // NEW0, with ITEM5's text, coded with the model's codebooks.
    const twin = catalog.find((e) => e.itemId === 'ITEM5') as ItemEvent;
    const grown = await codeNewItems({
      events: [...catalog, { ...twin, itemId: 'NEW0', ts: twin.ts + 1 }],
      store,
      registryFile: config.artifacts.registryFile,
      features: config.features,
      base: await latestGrownCatalog(store, ownSemanticIds),
    });
    expect(grown?.newItems).toBe(1);

    // The first load of the grown catalog fails: counted as such, the version keeps serving, and
    // the catalog is tried again once the backoff has passed (not on the very next check).
    failLoads = 1;
    const failed = await follower.check();
    expect(failed).toMatchObject({ kind: 'reloaded', semanticIds: grown!.semanticIds.id, outcome: { kind: 'failed', version: published.version } });
    expect({ failedSwaps: holder.failedSwaps, failedCatalogReloads: holder.failedCatalogReloads }).toEqual({ failedSwaps: 0, failedCatalogReloads: 1 });
    expect((await app.inject({ url: '/metrics' })).body).toMatch(/streamrec_serving_failed_catalog_reloads_total 1/);
    expect((await app.inject({ url: '/v1/items/NEW0/similar?k=3' })).statusCode).toBe(404);
    expect(await follower.check()).toEqual({ kind: 'waiting', semanticIds: grown!.semanticIds.id, until: 'retry' });
    clock += 1000;
    expect(await follower.check()).toMatchObject({ kind: 'reloaded', outcome: { kind: 'swapped', from: published.version, to: published.version } });
    expect(await follower.check()).toEqual({ kind: 'current' });

    const served = holder.current as ModelVersion;
    expect(served.describe()).toMatchObject({ version: published.version, items: 61, semanticIds: grown!.semanticIds.id });
    expect(served.ranker.exact).toBe(false);
    // Through the handler and the HNSW index, k far below the 61 items, as exact ranking of the
    // same catalog answers: NEW0's nearest items, and NEW0 among its nearest item's; recommended
    // (its text is ITEM5's: the prior's largest) for a history that ends with ITEM5.
    const exact = await ModelVersion.load(store, published, { ann: AnnConfig.parse({ index: 'exact' }) });
    try {
      const similar = async (itemId: string): Promise<string[]> => {
        const res = await app.inject({ url: `/v1/items/${itemId}/similar?k=5` });
        expect(res.statusCode).toBe(200);
        return (res.json().items as Array<{ itemId: string }>).map((i) => i.itemId);
      };
      const nearest = exact.similar('NEW0', 5).map((i) => i.itemId);
      expect(await similar('NEW0')).toEqual(nearest);
      const neighbour = nearest[0] as string;
      expect(await similar(neighbour)).toEqual(exact.similar(neighbour, 5).map((i) => i.itemId));
      expect(await similar(neighbour)).toContain('NEW0');
      const history = ['ITEM11', 'ITEM5'];
      const top5 = await post(history, 5);
      expect(top5).toContain('NEW0');
      const [reference] = await exact.recommend([history], 5, [new Set(history)]);
      expect(top5).toEqual(reference?.map((i) => i.itemId));
    } finally {
      exact.dispose();
    }
  }, 120_000);

  it('loads nothing for a full rebuild of another lineage, nor for any catalog under a SASRec model', async () => {
    const swaps = holder.swaps;
    const served = holder.current?.servable.lineage.semanticIds;
    const other = await runRebuildJob(AppConfig.parse({ ...raw, quantizer: { levels: 2, codesPerLevel: 4 } }), { source });
    expect(other.kind).toBe('full');
    expect((await store.latest('semantic_ids'))?.id).not.toBe(served);
    expect(await follower.check()).toEqual({ kind: 'current' });
    expect(holder.swaps).toBe(swaps);

    // A SASRec model keeps the catalog it was trained on, whatever semantic IDs the store holds.
    const sasrec = (await runTrainJob({ config, trainer: trainerConfigFromFlags(config.trainer, 'sasrec', {}), source, writeRows: false })).checkpointId as string;
    const version = await registry.publish({ checkpointId: sasrec, evaluation: EVAL });
    expect(await holder.syncWith(registry)).toMatchObject({ kind: 'swapped', to: version.version });
    expect(holder.current?.servable.lineage.semanticIds).toBeUndefined();
    expect(await follower.check()).toEqual({ kind: 'current' });
    expect(holder.swaps).toBe(swaps + 1);
  }, 120_000);
});
