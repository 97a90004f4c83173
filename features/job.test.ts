import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ArtifactError } from '../errors';
import { ArtifactStore, npyFile, jsonFile } from '../infra/artifacts';
import { Random } from '../random';
import { ItemEvent } from '../schemas/events';
import { Catalog } from './catalog';
import { FeaturesConfig } from './config';
import { datasetsRoot, loadDataset } from '../datasets';
import { readItemEmbeddings } from './embeddings';
import { runFeaturesJob, runFeaturesJobFromConfig } from './job';
import { cosineSimilarity, createMatrix, rowOf, type Matrix } from '../infra/matrix';
import { loadTextProjection } from './projection';
import { ItemRegistry } from './registry';
import { tfidfLsaSpec, type TfidfLsaSettings } from './tfidfLsa';
import { itWithDatasets } from '../datasets/testing/realDatasets';

const DATASETS = datasetsRoot();
const LSA: TfidfLsaSettings = { dims: 8, minDf: 1, maxFeatures: 1000, sublinearTf: true, oversample: 10, powerIterations: 2 };

const PRODUCTS: Array<[string, string, string | undefined]> = [
  ['drill-1', 'Cordless drill with lithium battery', 'Makita'],
  ['drill-2', 'Cordless drill driver, lithium ion battery pack', 'DeWalt'],
  ['tips-1', 'Laboratory pipette tips, sterile, 1000 ul', 'Eppendorf'],
  ['tips-2', 'Sterile pipette tips for laboratory pipettes', undefined],
  ['gloves-1', 'Nitrile gloves, powder free, large', 'Kimberly-Clark'],
  ['gloves-2', 'Disposable nitrile gloves, medium, powder free', 'Kimberly-Clark'],
  ['beaker-1', 'Borosilicate glass beaker, 250 ml', 'Pyrex'],
  ['beaker-2', 'Glass beakers, borosilicate, set of 5', 'Pyrex'],
  ['tape-1', 'Duct tape, silver, 2 inch', '3M'],
  ['tape-2', 'Masking tape for painting, 1 inch', '3M'],
];

function smallCatalog(): Catalog {
  // One item known only from interactions: it has a row but no text.
  const catalog = new Catalog(ItemRegistry.inMemory(['seen-only']));
  for (const [itemId, title, brand] of PRODUCTS) catalog.apply(ItemEvent.parse({ itemId, ts: 1, title, ...(brand ? { brand } : {}) }));
  return catalog;
}

function row(m: Matrix, i: number): number[] {
  return Array.from(rowOf(m, i));
}

let tmp: string;
beforeEach(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'streamrec-features-'));
});
afterEach(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

describe('features job', () => {
  it('writes per-field whitened embeddings by dense id with lineage, and reports progress', async () => {
    const catalog = smallCatalog();
    const store = new ArtifactStore(tmp);
    const steps = new Map<string, [number, number]>();
    const spec = tfidfLsaSpec(LSA);
    const result = await runFeaturesJob({
      catalog,
      store,
      spec,
      fields: 'auto',
      pcaDims: 3,
      whiten: true,
      random: new Random(7),
      progress: (step, done, total) => steps.set(step, [done, total]),
    });
    expect(result.fields).toEqual(['title', 'brand']);
    expect(result.rows).toBe(11);
    for (const step of ['clean', 'fit:title', 'encode:title', 'pca:title', 'fit:brand', 'encode:brand', 'pca:brand', 'write']) {
      const [done, total] = steps.get(step) ?? [0, -1];
      expect(done).toBe(total);
    }

    const title = result.matrices.get('title')!;
    const brand = result.matrices.get('brand')!;
    expect([title.rows, title.cols, brand.rows, brand.cols]).toEqual([11, 3, 11, 3]);
    // Row 0 = dense id 1 = the item without metadata; dense id 5 ('tips-2') has no brand.
    expect(row(title, 0)).toEqual([0, 0, 0]);
    expect(row(brand, catalog.registry.idOf('tips-2')! - 1)).toEqual([0, 0, 0]);
    // Whitening: each title component has unit variance (ddof 1) over the items with a title.
    for (let c = 0; c < 3; c++) {
      const values = Array.from({ length: 10 }, (_, i) => title.data[(i + 1) * 3 + c]!);
      const mean = values.reduce((s, v) => s + v, 0) / 10;
      expect(values.reduce((s, v) => s + (v - mean) ** 2, 0) / 9).toBeCloseTo(1, 4);
    }

    // Lineage: the embeddings name the catalog snapshot, the encoder and the pca artifact.
    const manifest = (await store.open(result.embeddings.id)).manifest;
    expect(manifest).toEqual(result.embeddings.manifest);
    const byRole = Object.fromEntries(manifest.inputs.map((i) => [i.role, i]));
    expect(byRole.catalog?.hash).toBe(catalog.snapshotHash());
    expect(byRole.encoder?.hash).toBe(spec.fingerprint());
    expect(byRole['encoder.title']?.hash).toBe(result.projection.field('title').encoder.fingerprint());
    expect(byRole.pca?.artifactId).toBe(result.pca.id);
    expect(manifest.settings).toMatchObject({ encoder: 'tfidf-lsa', pcaDims: 3, whiten: true, fields: ['title', 'brand'] });
    expect((await store.latest('pca'))?.id).toBe(result.pca.id);
  });

  it('round-trips: stored matrices, item ids, and new items embedded with the stored fitted state', async () => {
    const catalog = smallCatalog();
    const store = new ArtifactStore(tmp);
    const spec = tfidfLsaSpec(LSA);
    const result = await runFeaturesJob({ catalog, store, spec, fields: ['title'], pcaDims: 3, whiten: true, random: new Random(7) });

    const stored = await readItemEmbeddings(await store.open(result.embeddings.id));
    expect(stored.itemIds).toEqual(catalog.registry.externalIds());
    expect(stored.fields).toEqual(['title']);
    expect(Array.from(stored.matrices.get('title')!.data)).toEqual(Array.from(result.matrices.get('title')!.data));

    // A fresh process: a new spec object, the projection loaded from the pca artifact.
    const projection = await loadTextProjection(await store.open(result.pca.id), tfidfLsaSpec(LSA));
    const newItems = [
      ItemEvent.parse({ itemId: 'drill-1-again', ts: 2, title: PRODUCTS[0]![1] }),
      ItemEvent.parse({ itemId: 'drill-3', ts: 2, title: 'Lithium cordless drill' }),
      ItemEvent.parse({ itemId: 'no-title', ts: 2, brand: 'Acme' }),
    ];
    const embedded = (await projection.embedItems(newItems)).get('title')!;
    const drill1 = catalog.registry.idOf('drill-1')! - 1;
    row(embedded, 0).forEach((v, i) => expect(v).toBeCloseTo(row(stored.matrices.get('title')!, drill1)[i]!, 5));
    expect(row(embedded, 2)).toEqual([0, 0, 0]);
    const title = stored.matrices.get('title')!;
    const drill2 = catalog.registry.idOf('drill-2')! - 1;
    const tape = catalog.registry.idOf('tape-1')! - 1;
    expect(cosineSimilarity(rowOf(embedded, 1), rowOf(title, drill2))).toBeGreaterThan(cosineSimilarity(rowOf(embedded, 1), rowOf(title, tape)));

    // Same catalog, settings and seed: the same artifacts (content-addressed ids).
    const again = await runFeaturesJob({ catalog, store, spec, fields: ['title'], pcaDims: 3, whiten: true, random: new Random(7) });
    expect([again.pca.id, again.embeddings.id]).toEqual([result.pca.id, result.embeddings.id]);
  });

  it('rejects corrupted, truncated and inconsistent artifacts with clear errors', async () => {
    const store = new ArtifactStore(tmp);
    const result = await runFeaturesJob({
      catalog: smallCatalog(),
      store,
      spec: tfidfLsaSpec(LSA),
      fields: ['title'],
      pcaDims: 3,
      whiten: true,
      random: new Random(7),
    });
    const file = path.join(result.embeddings.dir, 'title.npy');
    const original = await fs.readFile(file);

    const flipped = Buffer.from(original);
    flipped[flipped.length - 3] = flipped[flipped.length - 3]! ^ 0x01;
    await fs.writeFile(file, flipped);
    await expect(readItemEmbeddings(await store.open(result.embeddings.id))).rejects.toThrow(/title\.npy does not match its sha256 \(corrupt\)/);

    await fs.writeFile(file, original.subarray(0, original.length - 8));
    await expect(readItemEmbeddings(await store.open(result.embeddings.id))).rejects.toThrow(/has \d+ bytes, manifest says \d+ \(truncated or replaced\)/);

    await fs.writeFile(file, original);
    await expect(readItemEmbeddings(await store.open(result.embeddings.id))).resolves.toMatchObject({ dims: 3 });

    const manifestFile = path.join(result.pca.dir, 'manifest.json');
    const manifestText = await fs.readFile(manifestFile, 'utf8');
    await fs.writeFile(manifestFile, manifestText.slice(0, 100));
    await expect(store.open(result.pca.id)).rejects.toThrow(/not valid JSON \(truncated or corrupt\)/);
    await fs.writeFile(manifestFile, manifestText);

    // Loading the projection with another encoder configuration is refused, not silently mixed.
    await expect(loadTextProjection(await store.open(result.pca.id), tfidfLsaSpec({ ...LSA, minDf: 2 }))).rejects.toThrow(
      /different model or settings/,
    );

    // Hashes fine, shapes inconsistent: the reader checks them against layout.json.
    const bad = await store.write({
      kind: 'embeddings',
      job: 'test',
      settings: {},
      inputs: [],
      files: [
        jsonFile('layout.json', { format: 1, fields: ['title'], rows: 3, dims: 2, rowOrder: 'x' }),
        jsonFile('item_ids.json', ['a', 'b', 'c']),
        npyFile('title.npy', createMatrix(2, 2).data, [2, 2]),
      ],
    });
    await expect(readItemEmbeddings(bad)).rejects.toThrow(ArtifactError);
    await expect(readItemEmbeddings(bad)).rejects.toThrow(/title\.npy is float32 \[2, 2\], expected float32 \[3, 2\]/);
  });

  it('names the field when a listed field has no text', async () => {
    const store = new ArtifactStore(tmp);
    await expect(
      runFeaturesJob({ catalog: smallCatalog(), store, spec: tfidfLsaSpec(LSA), fields: ['description'], pcaDims: 3, whiten: true, random: new Random(1) }),
    ).rejects.toThrow(/features.fields lists description, but no item has text there \(fields with text: title, brand\)/);
  });

  itWithDatasets('scientific')('runs the default glove-sif configuration on Amazon Scientific texts (meta only)', async () => {
    const events = (await loadDataset(path.join(DATASETS, 'scientific'))).items.slice(0, 600);
    const catalog = new Catalog();
    await catalog.applyAll(events);
    // Make sure the near-duplicate pair is in the slice.
    await catalog.applyAll(
      (await loadDataset(path.join(DATASETS, 'scientific'))).items.filter((e) => e.itemId === 'B0000223SI' || e.itemId === 'B0000223SK' || e.itemId === 'B0000223UV'),
    );
    const store = new ArtifactStore(tmp);
    const config = FeaturesConfig.parse({});
    const result = await runFeaturesJobFromConfig(catalog, store, config, new Random(3));
    expect(result.fields).toEqual(['meta']);
    const meta = result.matrices.get('meta')!;
    expect([meta.rows, meta.cols]).toEqual([catalog.size, 64]);
    const at = (id: string) => rowOf(meta, catalog.registry.idOf(id)! - 1);
    expect(cosineSimilarity(at('B0000223SI'), at('B0000223SK'))).toBeGreaterThan(cosineSimilarity(at('B0000223SI'), at('B0000223UV')) + 0.3);
    expect(result.pca.manifest.settings).toMatchObject({ encoder: 'glove-sif', pcaDims: 64 });
    expect((result.pca.manifest.metrics as Record<string, number>)['explainedVarianceRatio.meta']).toBeGreaterThan(0.5);
  });

  itWithDatasets('scientific')('embeds each field of the split Amazon Scientific texts on its own (title, brand, categories)', async () => {
    const all = (await loadDataset(path.join(DATASETS, 'scientific'), { text: 'fields' })).items;
    const catalog = new Catalog();
    await catalog.applyAll(all.slice(0, 600));
    await catalog.applyAll(all.filter((e) => ['B0000223SI', 'B0000223SK', 'B0000223UV'].includes(e.itemId)));
    const result = await runFeaturesJobFromConfig(catalog, new ArtifactStore(tmp), FeaturesConfig.parse({}), new Random(3));
    expect(result.fields).toEqual(['title', 'brand', 'categories']);
    const rows = (field: string) => result.matrices.get(field as never)!;
    expect([rows('title').rows, rows('title').cols]).toEqual([catalog.size, 64]);
    const at = (field: string, id: string) => rowOf(rows(field), catalog.registry.idOf(id)! - 1);
    // Two PORTER-CABLE sanding rolls: the same brand vector, near titles; a Gorilla glue differs in both.
    expect(cosineSimilarity(at('brand', 'B0000223SI'), at('brand', 'B0000223SK'))).toBeCloseTo(1, 5);
    expect(cosineSimilarity(at('brand', 'B0000223SI'), at('brand', 'B0000223UV'))).toBeLessThan(0.9);
    expect(cosineSimilarity(at('title', 'B0000223SI'), at('title', 'B0000223SK'))).toBeGreaterThan(cosineSimilarity(at('title', 'B0000223SI'), at('title', 'B0000223UV')) + 0.3);
  });
});

describe('FeaturesConfig', () => {
  it('has defaults for everything and rejects unknown keys', () => {
    const config = FeaturesConfig.parse({});
    expect(config).toMatchObject({ encoder: 'glove-sif', fields: 'auto', pcaDims: 64, whiten: true, cacheDir: '' });
    expect(config.gloveSif).toEqual({ a: 1e-3, removeComponents: 1, sourceFile: '' });
    expect(config.tfidfLsa.dims).toBe(256);
    expect(FeaturesConfig.safeParse({ pcaDim: 32 }).success).toBe(false);
    expect(FeaturesConfig.safeParse({ onnx: { modeldir: 'x' } }).success).toBe(false);
    expect(FeaturesConfig.safeParse({ fields: ['title', 'colour'] }).success).toBe(false);
    expect(FeaturesConfig.parse({ fields: ['title'], tfidfLsa: { dims: 32 } }).tfidfLsa).toMatchObject({ dims: 32, minDf: 2 });
  });

  it('describes every key', () => {
    const undescribed: string[] = [];
    const walk = (schema: { shape?: Record<string, unknown> } | undefined, prefix: string) => {
      for (const [key, value] of Object.entries(schema?.shape ?? {})) {
        const field = value as { description?: string; unwrap?: () => unknown; def?: { innerType?: unknown } };
        if (!field.description) undescribed.push(`${prefix}${key}`);
        const inner = (field.def?.innerType ?? field) as { shape?: Record<string, unknown> };
        if (inner.shape) walk(inner, `${prefix}${key}.`);
      }
    };
    walk(FeaturesConfig as unknown as { shape: Record<string, unknown> }, '');
    expect(undescribed).toEqual([]);
  });
});
