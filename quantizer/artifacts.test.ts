import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ArtifactError } from '../errors';
import { ArtifactStore, type LoadedArtifact } from '../infra/artifacts';
import { Random } from '../random';
import { ArtifactManifest } from '../schemas/artifacts';
import {
  CodebooksArtifactSettings,
  SemanticIdsArtifactSettings,
  buildSemanticIds,
  collisionStats,
  encodeNewItems,
  loadQuantizer,
  loadSemanticIdTable,
  matrixHash,
  semanticIdOf,
  syntheticClusters,
  type Matrix,
} from './index';
import { createMatrix, takeRows } from '../infra/matrix';

const all = syntheticClusters({ rows: 640, dims: 8, clusters: 6, clusterRank: 3, globalRank: 4 }, new Random(3)).matrix;
const items = takeRows(all, Array.from({ length: 600 }, (_, i) => i));
const newItems = takeRows(all, Array.from({ length: 40 }, (_, i) => 600 + i));
const embeddingsInput = { role: 'embeddings', hash: 'embeddings-0123456789abcdef', artifactId: 'embeddings-0123456789abcdef' };

let root: string;
let store: ArtifactStore;

beforeEach(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'streamrec-quantizer-'));
  store = new ArtifactStore(root);
});

afterEach(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

async function build(method: 'opq' | 'rq' | 'rqkmeans' | 'pq', disambiguate = false): ReturnType<typeof buildSemanticIds> {
  return buildSemanticIds({
    store,
    matrix: items,
    settings: { method, levels: 2, codesPerLevel: 8 },
    rng: new Random(11),
    inputs: [embeddingsInput],
    job: 'test rebuild',
    disambiguate,
  });
}

/** A copy of an artifact directory (outside the store) with one file changed by `damage`. */
async function damagedCopy(artifact: LoadedArtifact, file: string, damage: (data: Buffer) => Buffer): Promise<LoadedArtifact> {
  const dir = path.join(root, 'damaged', `${artifact.id}-${file}`);
  await fs.cp(artifact.dir, dir, { recursive: true });
  const target = path.join(dir, file);
  await fs.writeFile(target, damage(await fs.readFile(target)));
  return store.openDir(dir);
}

describe('quantizer artifacts', () => {
  const methods = ['pq', 'opq', 'rq', 'rqkmeans'] as const;
  it.each(methods)('%s: manifests round-trip and the loaded quantizer encodes exactly as the trained one', async (method) => {
    const built = await build(method);
    const codebooks = await store.open(built.codebooks.id);
    expect(ArtifactManifest.parse(codebooks.manifest)).toEqual(codebooks.manifest);
    const settings = CodebooksArtifactSettings.parse(codebooks.manifest.settings);
    expect(settings).toMatchObject({ method, dims: 8, levels: 2, codesPerLevel: 8, trainingRows: 600, seed: 11 });
    expect(codebooks.manifest.inputs).toEqual([
      expect.objectContaining({ role: 'matrix', hash: matrixHash(items) }),
      embeddingsInput,
    ]);
    expect(codebooks.manifest.producer.job).toBe('test rebuild');
    expect(codebooks.manifest.metrics).toMatchObject({ relMse: built.metrics.relMse, collisionRate: built.metrics.collisionRate });
    expect(codebooks.manifest.files.map((f) => f.name).sort()).toEqual(method === 'opq' ? ['codebooks.npy', 'rotation.npy'] : ['codebooks.npy']);

    const loaded = await loadQuantizer(codebooks);
    expect(loaded.kind).toBe(method);
    expect(Array.from(loaded.encode(all))).toEqual(Array.from(built.quantizer.encode(all)));

    const { table, settings: sidSettings } = await loadSemanticIdTable(await store.open(built.semanticIds.id));
    expect(Array.from(table.codes)).toEqual(Array.from(built.table.codes));
    expect(sidSettings).toMatchObject({ items: 600, paddingItemId: 0, codebooksId: built.codebooks.id, rebuildItems: 600 });
    expect(SemanticIdsArtifactSettings.parse(sidSettings)).toEqual(sidSettings);
    expect(semanticIdOf(table, 0)).toEqual([0, 0]);
  });

  it('disambiguated tables give every item a unique ID', async () => {
    const built = await build('rq', true);
    expect(built.metrics.collisionRate).toBeGreaterThan(0); // 600 items, 64 code vectors
    expect(built.table.digits).toBe(3);
    expect(collisionStats(built.table.codes.subarray(3), 600, 3).collisionRate).toBe(0);
  });

  it('new items without text (all-zero vectors) are coded too, with no relative error to report', async () => {
    const built = await build('rqkmeans');
    const next = await encodeNewItems({ store, semanticIds: built.semanticIds, vectors: createMatrix(2, 8), inputs: [], job: 'test new items' });
    expect(next.table.items).toBe(602);
    expect(next.metrics.newItems).toBe(2);
    expect(next.metrics.newItemsRelMse).toBeUndefined();
  });

  it('new items are coded with the existing codebooks into a new version; existing items keep ids and codes', async () => {
    const built = await build('rqkmeans', true);
    const next = await encodeNewItems({
      store,
      semanticIds: built.semanticIds,
      vectors: newItems,
      inputs: [{ role: 'new_item_embeddings', hash: 'abc' }],
      job: 'test new items',
    });
    expect(next.firstItemId).toBe(601);
    expect(next.table.items).toBe(640);
    expect(Array.from(next.table.codes.subarray(0, built.table.codes.length))).toEqual(Array.from(built.table.codes));
    expect(Array.from(next.codes)).toEqual(Array.from(built.quantizer.encode(newItems)));
    for (let i = 0; i < 40; i++) expect(semanticIdOf(next.table, 601 + i).slice(0, 2)).toEqual(Array.from(next.codes.subarray(i * 2, i * 2 + 2)));
    expect(collisionStats(next.table.codes.subarray(3), 640, 3).collisionRate).toBe(0); // still unique

    const manifest = next.semanticIds.manifest;
    expect(manifest.version).toBe(built.semanticIds.manifest.version + 1);
    expect(manifest.settings).toMatchObject({ items: 640, rebuildItems: 600, previousId: built.semanticIds.id, codebooksId: built.codebooks.id });
    expect(manifest.inputs.map((i) => i.role)).toEqual(['codebooks', 'previous_semantic_ids', 'new_item_vectors', 'new_item_embeddings']);
    expect((await store.latest('semantic_ids'))?.id).toBe(next.semanticIds.id);
    expect((await store.list('codebooks')).length).toBe(1); // no refit
    const reloaded = await loadSemanticIdTable(await store.open(next.semanticIds.id));
    expect(Array.from(reloaded.table.codes)).toEqual(Array.from(next.table.codes));
  });

  it('a full rebuild with other settings is a new version of both kinds', async () => {
    const first = await build('rq');
    const second = await buildSemanticIds({
      store,
      matrix: items,
      settings: { method: 'rq', levels: 3, codesPerLevel: 8 },
      rng: new Random(11),
      inputs: [embeddingsInput],
      job: 'test rebuild',
    });
    expect(second.codebooks.manifest.version).toBe(first.codebooks.manifest.version + 1);
    expect(second.semanticIds.manifest.version).toBe(first.semanticIds.manifest.version + 1);
    expect(second.codebooks.id).not.toBe(first.codebooks.id);
  });

  it('rejects truncated, corrupted or inconsistent artifacts with a clear ArtifactError', async () => {
    const built = await build('opq');
    const truncated = await damagedCopy(built.codebooks, 'codebooks.npy', (d) => d.subarray(0, d.length - 7));
    await expect(loadQuantizer(truncated)).rejects.toThrow(ArtifactError);
    await expect(loadQuantizer(truncated)).rejects.toThrow(/codebooks\.npy has \d+ bytes, manifest says \d+ \(truncated or replaced\)/);

    const flipped = await damagedCopy(built.codebooks, 'rotation.npy', (d) => {
      const copy = Buffer.from(d);
      copy[copy.length - 3] = copy[copy.length - 3]! ^ 0xff;
      return copy;
    });
    await expect(loadQuantizer(flipped)).rejects.toThrow(/rotation\.npy does not match its sha256 \(corrupt\)/);

    const ids = await damagedCopy(built.semanticIds, 'semantic_ids.npy', (d) => d.subarray(0, 100));
    await expect(loadSemanticIdTable(ids)).rejects.toThrow(/semantic_ids\.npy has 100 bytes.*truncated/);

    const dir = path.join(root, 'damaged', 'manifest');
    await fs.cp(built.codebooks.dir, dir, { recursive: true });
    const manifestFile = path.join(dir, 'manifest.json');
    const text = await fs.readFile(manifestFile, 'utf8');
    await fs.writeFile(manifestFile, text.slice(0, text.length / 2));
    await expect(store.openDir(dir)).rejects.toThrow(/manifest.*is not valid JSON \(truncated or corrupt\)/);

    // A manifest whose settings disagree with the files (here: levels edited) is refused too.
    const edited = JSON.parse(text) as { settings: { levels: number } };
    edited.settings.levels = 4;
    await fs.writeFile(manifestFile, JSON.stringify(edited));
    await expect(loadQuantizer(await store.openDir(dir))).rejects.toThrow(
      /codebooks\.npy is float32 \[2, 8, 4\], the manifest settings need float32 \[4, 8, 2\]/,
    );
    edited.settings.levels = -1;
    await fs.writeFile(manifestFile, JSON.stringify(edited));
    await expect(loadQuantizer(await store.openDir(dir))).rejects.toThrow(/manifest settings are invalid at levels.*received number -1/);

    await expect(loadQuantizer(built.semanticIds)).rejects.toThrow(/expected a codebooks artifact/);
  });

  it('refuses new items whose width differs from the codebooks', async () => {
    const built = await build('rq');
    const wrong: Matrix = { data: new Float32Array(3 * 5), rows: 3, cols: 5 };
    await expect(encodeNewItems({ store, semanticIds: built.semanticIds, vectors: wrong, inputs: [], job: 't' })).rejects.toThrow(
      /must have 8 columns/,
    );
  });
});
