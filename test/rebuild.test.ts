import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FeaturesConfig } from '../features';
import { ArtifactStore } from '../infra/artifacts';
import { initTf } from '../infra/tf';
import { loadDataset } from '../datasets';
import { Random } from '../random';
import { loadArtifactSideInfo } from '../trainer/artifactSideInfo';
import { codeNewItems, rebuild } from '../quantizer/rebuild';
import { loadSemanticIdTable } from '../quantizer/artifacts';
import { readItemEmbeddings } from '../features';
import { itWithDatasets } from '../datasets/testing/realDatasets';

describe('rebuild (catalog -> registry -> embeddings -> PCA -> semantic IDs)', () => {
  beforeAll(async () => {
    await initTf();
  });

  itWithDatasets('ml-100k')('writes linked artifacts, keeps item ids across rebuilds, and feeds the trainer consistent side information', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'streamrec-rebuild-'));
    const store = new ArtifactStore(path.join(dir, 'artifacts'));
    const registryFile = path.join(dir, 'registry.json');
    const items = (await loadDataset('ml-100k')).items;
    const features = FeaturesConfig.parse({ encoder: 'tfidf-lsa', pcaDims: 16, tfidfLsa: { dims: 32 } });
    const quantizers = [{ method: 'rqkmeans' as const, levels: 2, codesPerLevel: 16 }];

    const first = await rebuild({ events: items.slice(0, 300), store, registryFile, features, quantizers, rng: new Random(1) });
    expect(first.items).toBe(300);
    expect(first.fields).toEqual(['title', 'categories', 'features']);
    expect([first.matrix.rows, first.matrix.cols]).toEqual([300, 48]); // three fields x 16 dims side by side
    const build = first.builds[0]!;
    expect(build.table.items).toBe(300);
    // Lineage: the semantic IDs name the embeddings they were computed from.
    expect(build.semanticIds.manifest.inputs.some((i) => i.artifactId === first.embeddings.id)).toBe(true);
    expect(first.embeddings.manifest.inputs.some((i) => i.artifactId === first.pca.id)).toBe(true);

    const { sideInfo, itemIds } = await loadArtifactSideInfo(store);
    expect(sideInfo.itemCount).toBe(300);
    expect(sideInfo.textFields.map((f) => [f.name, f.dims, f.table.length])).toEqual([
      ['title', 16, 301 * 16],
      ['categories', 16, 301 * 16],
      ['features', 16, 301 * 16],
    ]);
    expect(sideInfo.textFields[0]!.table.subarray(0, 16).every((v) => v === 0)).toBe(true); // padding row
    expect(sideInfo.codes.table.length).toBe(301 * 2);
    expect(itemIds.denseId(items[0]!.itemId)).toBe(1);
    expect(sideInfo.artifactIds.semanticIds).toBe(build.semanticIds.id);

    // A rebuild over a grown catalog: old items keep their dense ids, new ones follow.
    const second = await rebuild({ events: items.slice(0, 350), store, registryFile, features, quantizers, rng: new Random(1) });
    expect(second.items).toBe(350);
    const grown = await loadArtifactSideInfo(store);
    expect(grown.itemIds.denseId(items[0]!.itemId)).toBe(1);
    expect(grown.itemIds.denseId(items[299]!.itemId)).toBe(300);
    expect(grown.itemIds.denseId(items[349]!.itemId)).toBe(350);
    expect(second.builds[0]!.semanticIds.manifest.version).toBe(2);
  }, 60_000);

  itWithDatasets('ml-100k')('codes items added between rebuilds with the stored projection and codebooks, leaving existing rows unchanged', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'streamrec-newitems-'));
    const store = new ArtifactStore(path.join(dir, 'artifacts'));
    const registryFile = path.join(dir, 'registry.json');
    const items = (await loadDataset('ml-100k')).items;
    const features = FeaturesConfig.parse({ encoder: 'tfidf-lsa', pcaDims: 16, tfidfLsa: { dims: 32 } });
    const first = await rebuild({ events: items.slice(0, 300), store, registryFile, features, quantizers: [{ method: 'rq', levels: 2, codesPerLevel: 16 }], rng: new Random(2) });
    expect(await codeNewItems({ events: items.slice(0, 300), store, registryFile, features })).toBeUndefined();

    const added = await codeNewItems({ events: items.slice(0, 320), store, registryFile, features });
    expect(added).toMatchObject({ newItems: 20, items: 320 });
    const before = await readItemEmbeddings(first.embeddings);
    const after = await readItemEmbeddings(added!.embeddings);
    const title = (e: typeof before) => e.matrices.get('title')!.data;
    expect(Array.from(title(after).subarray(0, 300 * 16))).toEqual(Array.from(title(before)));
    const oldTable = (await loadSemanticIdTable(first.builds[0]!.semanticIds)).table;
    const newTable = (await loadSemanticIdTable(added!.semanticIds)).table;
    expect(newTable.items).toBe(320);
    expect(Array.from(newTable.codes.subarray(0, 301 * 2))).toEqual(Array.from(oldTable.codes));
    // The new rows are what the stored codebooks give the new embeddings (no refit).
    const q = first.builds[0]!.quantizer;
    const newRows = { data: new Float32Array(20 * 48), rows: 20, cols: 48 };
    for (let r = 0; r < 20; r++) {
      ['title', 'categories', 'features'].forEach((f, j) => newRows.data.set(after.matrices.get(f as 'title')!.data.subarray((300 + r) * 16, (301 + r) * 16), r * 48 + j * 16));
    }
    expect(Array.from(newTable.codes.subarray(301 * 2))).toEqual(Array.from(q.encode(newRows)));
    const { sideInfo } = await loadArtifactSideInfo(store);
    expect(sideInfo.itemCount).toBe(320);
  }, 60_000);
});
