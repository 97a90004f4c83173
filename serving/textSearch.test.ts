import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createTextEncoderSpec, type TextEncoderSpec } from '../features';
import { ArtifactStore } from '../infra/artifacts';
import { AppConfig, runRebuildJob, runTrainJob, trainerConfigFromFlags } from '../jobs';
import { AnnConfig } from '../schemas/serving';
import { tinyStoresConfig, writeTinyScientific } from '../test/tinyScientific';
import { AnnIndexCache } from './ann';
import { ModelVersion } from './modelVersion';

/**
 * Free-text search over a catalog at or above the exact threshold goes through the HNSW index of
 * the item text vectors (the text prior's, built once for both) and answers as scoring every item
 * does; below it every item is scored, as before.
 */
describe('TextSearch', () => {
  const root = mkdtempSync(path.join(tmpdir(), 'streamrec-search-'));
  const data = writeTinyScientific(mkdtempSync(path.join(root, 'data-')));
  const config = AppConfig.parse({
    ...tinyStoresConfig(root),
  });
  const store = new ArtifactStore(config.artifacts.dir);
  const source = { kind: 'dataset' as const, dataset: data };
  const hnsw = AnnConfig.parse({ exactBelow: 0, hnsw: { m: 8, efConstruction: 40 } });
  const queries = ['beaker supplies', 'red lamp', 'glove kit model7', 'sensor valve black', 'zzzz qqqq'];
  let spec: TextEncoderSpec;

  beforeAll(async () => {
    await runRebuildJob(config, { source });
    spec = await createTextEncoderSpec(config.features);
  }, 60_000);
  afterAll(async () => {
    await spec.dispose();
    rmSync(root, { recursive: true, force: true });
  });

  it.each([
    ['with a tuned text prior (its index shared)', { 'text-prior': '1', 'text-prior-last': '2' }, true],
    ['without a text prior (an index for search alone)', {}, false],
  ])('%s: searches through the HNSW text index with the answers of scoring every item', async (_, flags, withPrior) => {
    const trainer = trainerConfigFromFlags(config.trainer, 'ccfrec', flags);
    const checkpointId = (await runTrainJob({ config, trainer, source, writeRows: false })).checkpointId as string;
    const annCache = new AnnIndexCache(mkdtempSync(path.join(root, 'ann-cache-')));
    const viaIndex = await ModelVersion.load(store, { version: 1, checkpointId }, { textSpec: spec, ann: hnsw, annCache });
    const scan = await ModelVersion.load(store, { version: 1, checkpointId }, { textSpec: spec });
    try {
      expect(viaIndex.servable.textPrior !== undefined).toBe(withPrior);
      // One index over the item vectors and one over their text vectors, whatever uses the latter.
      expect(annCache.misses).toBe(2);
      if ('unavailable' in viaIndex.search) throw new Error(viaIndex.search.unavailable);
      if ('unavailable' in scan.search) throw new Error(scan.search.unavailable);
      expect(viaIndex.search.index?.kind).toBe('hnsw');
      expect(scan.search.index).toBeUndefined(); // 60 items: below the default threshold, every item scored
      const searched = jest.spyOn(viaIndex.search.index!, 'search');
      for (const query of queries) {
        for (const k of [1, 5, 60]) expect(await viaIndex.search.search(query, k)).toEqual(await scan.search.search(query, k));
      }
      expect(await viaIndex.search.search('beaker supplies', 5)).toHaveLength(5);
      // Every query with a known word went through the index (the last has none: no vector to search with).
      expect(searched).toHaveBeenCalledTimes((queries.length - 1) * 3 + 1);
      // Prepared ahead (a trainer has no text encoder), a server's load builds neither index.
      const prepared = new AnnIndexCache(mkdtempSync(path.join(root, 'ann-cache-')));
      await ModelVersion.prepare(store, checkpointId, { ann: hnsw, annCache: prepared });
      expect(prepared.misses).toBe(2);
      const served = await ModelVersion.load(store, { version: 2, checkpointId }, { textSpec: spec, ann: hnsw, annCache: prepared });
      served.dispose();
      expect({ misses: prepared.misses, hits: prepared.hits }).toEqual({ misses: 2, hits: 2 });
    } finally {
      viaIndex.dispose();
      scan.dispose();
    }
  }, 60_000);
});
