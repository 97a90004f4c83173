import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadDataset } from '../datasets';
import { ArtifactStore } from '../infra/artifacts';
import { codeNewItems } from '../quantizer/rebuild';
import type { ItemEvent } from '../schemas/events';
import { tinyStoresConfig, writeTinyScientific } from '../test/tinyScientific';
import { latestGrownCatalog } from '../trainer';
import { AppConfig, loadServableModel, runRebuildJob, runTrainJob, trainerConfigFromFlags } from './index';

/**
 * A model's catalog grows only along its own lineage: new items are coded with the codebooks and
 * projection it was trained with, and `catalog: 'latest'` loads the newest catalog grown from its
 * semantic IDs, even when another full rebuild (a manual `streamrec rebuild`, a refused candidate)
 * has since become the store's latest.
 */
describe('catalog lineage', () => {
  const root = mkdtempSync(path.join(tmpdir(), 'streamrec-lineage-'));
  const data = writeTinyScientific(mkdtempSync(path.join(root, 'data-')), { items: 60 });
  const raw = {
    ...tinyStoresConfig(root),
  };
  const config = AppConfig.parse(raw);
  const store = new ArtifactStore(config.artifacts.dir);
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  const newItem = (i: number): ItemEvent => ({ itemId: `NEW${i}`, ts: 1000 + i, meta: `valve blue kit new${i}. Industrial & Scientific valve supplies. Brand${i}.` });

  it('codes new items with the model\'s own codebooks and loads its grown catalog after another full rebuild became the latest', async () => {
    const source = { kind: 'dataset' as const, dataset: data };
    const first = await runRebuildJob(config, { source });
    if (first.kind !== 'full') throw new Error('expected a full rebuild');
    const own = first.result.builds[0]!.semanticIds;
    const trainer = trainerConfigFromFlags(config.trainer, 'ccfrec', {});
    const checkpoint = (await runTrainJob({ config, trainer, source, writeRows: false })).checkpointId as string;
    const catalog = (await loadDataset(data)).items;

    // Two new items, grown from the model's semantic IDs.
    const grown1 = await codeNewItems({ events: [...catalog, newItem(0), newItem(1)], store, registryFile: config.artifacts.registryFile, features: config.features, base: await latestGrownCatalog(store, own.id) });
    expect(grown1?.newItems).toBe(2);
    expect(grown1!.semanticIds.manifest.settings).toMatchObject({ previousId: own.id, codebooksId: own.manifest.settings.codebooksId });

    // Someone rebuilds with other codebooks: that rebuild is now the store's latest.
    const other = await runRebuildJob(AppConfig.parse({ ...raw, quantizer: { levels: 2, codesPerLevel: 4 } }), { source });
    if (other.kind !== 'full') throw new Error('expected a full rebuild');
    const foreign = other.result.builds[0]!.semanticIds;
    expect((await store.latest('semantic_ids'))?.id).toBe(foreign.id);
    expect(foreign.manifest.settings.codebooksId).not.toBe(own.manifest.settings.codebooksId);

    // The model's latest catalog is still its own lineage's (found by scanning the versions).
    expect(await latestGrownCatalog(store, own.id)).toEqual({ semanticIds: grown1!.semanticIds.id, embeddings: grown1!.embeddings.id });
    const servable = await loadServableModel(store, checkpoint, { catalog: 'latest' });
    try {
      expect(servable.lineage.semanticIds).toBe(grown1!.semanticIds.id);
      expect(servable.appendedItems).toBe(2);
      expect(servable.items.denseId('NEW1')).toBe(62);
      expect(servable.sideInfo?.codes.codesPerLevel).toBe(8);
    } finally {
      servable.dispose();
    }
    // A third item grows the model's lineage again, with its codebooks, not the latest rebuild's.
    const grown2 = await codeNewItems({ events: [...catalog, newItem(0), newItem(1), newItem(2)], store, registryFile: config.artifacts.registryFile, features: config.features, base: await latestGrownCatalog(store, own.id) });
    expect(grown2!.semanticIds.manifest.settings).toMatchObject({ previousId: grown1!.semanticIds.id, codebooksId: own.manifest.settings.codebooksId, items: 63 });
    // Now the latest again (found walking back from it), and the other rebuild has grown nothing.
    expect((await latestGrownCatalog(store, own.id)).semanticIds).toBe(grown2!.semanticIds.id);
    expect(await latestGrownCatalog(store, foreign.id)).toEqual({ semanticIds: foreign.id, embeddings: expect.stringMatching(/^embeddings-/) });

    // Two writers at once (a trainer coding new items, `streamrec rebuild --new-items` by hand):
    // the catalog lock runs them one after the other, each growing the lineage from what the
    // other wrote (without it, the second registry save fails: changed by another writer).
    const grow = (items: ItemEvent[]) => codeNewItems({ events: [...catalog, newItem(0), newItem(1), newItem(2), ...items], store, registryFile: config.artifacts.registryFile, features: config.features, base: () => latestGrownCatalog(store, own.id) });
    const [a, b] = await Promise.all([grow([newItem(3)]), grow([newItem(4)])]);
    const [first3, second3] = [a, b].sort((x, y) => (x!.semanticIds.manifest.settings.items as number) - (y!.semanticIds.manifest.settings.items as number));
    expect(first3!.semanticIds.manifest.settings).toMatchObject({ previousId: grown2!.semanticIds.id });
    expect(second3!.semanticIds.manifest.settings).toMatchObject({ previousId: first3!.semanticIds.id, items: 65 });
  }, 120_000);
});
