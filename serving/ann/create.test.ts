import { promises as fs } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { ArtifactError, ConfigError } from '../../errors';
import { takeRows } from '../../infra/matrix';
import { Random } from '../../random';
import { AnnConfig, parseAnnConfig } from './config';
import { chooseKind, createAnnIndex, loadAnnIndex } from './create';
import { ExactIndex } from './exact';
import { HnswIndex } from './hnsw';
import { clusteredUnitVectors } from './synthetic';
import { bruteForce, recallAt } from './testing/contract';

const D = 16;

describe('AnnConfig', () => {
  it('fills every default and describes every key', () => {
    expect(parseAnnConfig({})).toEqual({ index: 'auto', exactBelow: 20_000, hnsw: { m: 32, efConstruction: 200, ef: 256, seed: 100 } });
    const undescribed: string[] = [];
    const walk = (schema: z.ZodType, where: string): void => {
      if (!schema.description) undescribed.push(where);
      const inner = schema instanceof z.ZodDefault || schema instanceof z.ZodPrefault ? (schema._zod.def.innerType as z.ZodType) : schema;
      if (inner instanceof z.ZodObject) for (const [key, child] of Object.entries(inner.shape)) walk(child as z.ZodType, `${where}.${key}`);
    };
    walk(AnnConfig, 'ann');
    expect(undescribed).toEqual([]);
  });

  it('refuses an unknown key or a bad value with a ConfigError naming the key and what it received', () => {
    expect(() => parseAnnConfig({ hnsw: { efConstrution: 100 } })).toThrow(ConfigError);
    expect(() => parseAnnConfig({ hnsw: { efConstrution: 100 } })).toThrow(/invalid hnsw: .*unknown keys: efConstrution/);
    expect(() => parseAnnConfig({ index: 'ivf' })).toThrow(/invalid index: .*received string "ivf"/);
    expect(() => parseAnnConfig({ hnsw: { ef: 0 } })).toThrow(/invalid hnsw\.ef: .*received number 0/);
  });
});

describe('createAnnIndex and loadAnnIndex', () => {
  const vectors = clusteredUnitVectors(300, D, new Random(3));
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'streamrec-ann-create-'));
  });
  afterEach(async () => rm(dir, { recursive: true, force: true }));

  it('chooses exact below exactBelow and HNSW from there, unless one is forced', async () => {
    expect(chooseKind(19_999, parseAnnConfig({}))).toBe('exact');
    expect(chooseKind(20_000, parseAnnConfig({}))).toBe('hnsw');
    const small = await createAnnIndex(vectors, { exactBelow: 301 });
    const large = await createAnnIndex(vectors, { exactBelow: 300, hnsw: { m: 8, ef: 40 } });
    const forced = await createAnnIndex(vectors, { index: 'exact', exactBelow: 0 });
    expect([small.kind, large.kind, forced.kind]).toEqual(['exact', 'hnsw', 'exact']);
    expect((large as HnswIndex).settings).toEqual({ m: 8, efConstruction: 200, ef: 40, seed: 100 });
    await expect(createAnnIndex(vectors, { index: 'ivf' } as never)).rejects.toThrow(ConfigError);
    [small, large, forced].forEach((i) => i.dispose());
  });

  it('reopens either kind from its manifest, with HNSW settings restored, and refuses the other kind\'s loader', async () => {
    const hnsw = await HnswIndex.build(vectors, { m: 8, efConstruction: 50, ef: 33, seed: 9 });
    const exact = await ExactIndex.build(vectors);
    await hnsw.save(path.join(dir, 'h'));
    await exact.save(path.join(dir, 'e'));
    const h = await loadAnnIndex(path.join(dir, 'h'));
    const e = await loadAnnIndex(path.join(dir, 'e'));
    expect([h.kind, e.kind]).toEqual(['hnsw', 'exact']);
    expect((h as HnswIndex).settings).toEqual({ m: 8, efConstruction: 50, ef: 33, seed: 9 });
    const manifest = JSON.parse(await fs.readFile(path.join(dir, 'h', 'manifest.json'), 'utf8')) as Record<string, unknown>;
    expect(manifest).toMatchObject({ format: 'streamrec.ann-index', kind: 'hnsw', dims: D, count: 300, hnsw: { m: 8, efConstruction: 50, ef: 33, seed: 9 } });
    expect((manifest.files as Array<{ name: string }>).map((f) => f.name)).toEqual(['vectors.npy', 'ids.npy', 'hnsw.bin']);
    await expect(HnswIndex.load(path.join(dir, 'e'))).rejects.toThrow(/holds a exact index, expected hnsw/);
    await expect(ExactIndex.load(path.join(dir, 'h'))).rejects.toThrow(/holds a hnsw index, expected exact/);
    await fs.writeFile(path.join(dir, 'e', 'manifest.json'), JSON.stringify({ ...manifest, kind: 'ivf' }));
    await expect(loadAnnIndex(path.join(dir, 'e'))).rejects.toThrow(ArtifactError);
    await expect(loadAnnIndex(path.join(dir, 'e'))).rejects.toThrow(/names kind "ivf", expected exact or hnsw/);
    await expect(loadAnnIndex(path.join(dir, 'none'))).rejects.toThrow(/no ANN index at .*none \(cannot read manifest\.json\)/);
    [hnsw, exact, h, e].forEach((i) => i.dispose());
  });

  it('saves a consistent snapshot when items are added while the save is under way', async () => {
    for (const index of [await ExactIndex.build(vectors), await HnswIndex.build(vectors)]) {
      const target = path.join(dir, index.kind);
      const saving = index.save(target);
      index.add([301], takeRows(clusteredUnitVectors(1, D, new Random(8)), [0]));
      const manifest = await saving;
      const loaded = await loadAnnIndex(target);
      expect(loaded.size).toBe(manifest.count);
      expect(loaded.size === 300 || loaded.size === 301).toBe(true);
      [index, loaded].forEach((i) => i.dispose());
    }
  });

  it('leaves no staging directory behind and keeps the earlier index when a save fails', async () => {
    const exact = await ExactIndex.build(vectors);
    await exact.save(path.join(dir, 'e'));
    const hnsw = await HnswIndex.build(vectors);
    // hnswlib's methods are read-only: swap the graph for one whose write fails, then put it back.
    const held = hnsw as unknown as { graph: unknown };
    const graph = held.graph;
    held.graph = { writeIndexSync: () => { throw new Error('disk full'); } };
    await expect(hnsw.save(path.join(dir, 'e'))).rejects.toThrow(/cannot save the ANN index to .*\/e/);
    held.graph = graph;
    expect(await fs.readdir(dir)).toEqual(['e']);
    expect((await loadAnnIndex(path.join(dir, 'e'))).kind).toBe('exact');
    [exact, hnsw].forEach((i) => i.dispose());
  });
});

describe('HnswIndex', () => {
  const all = clusteredUnitVectors(2100, D, new Random(11), { spread: 1.5 }); // harder than the default spread
  const items = takeRows(all, Array.from({ length: 2000 }, (_, i) => i));
  const queries = takeRows(all, Array.from({ length: 100 }, (_, i) => 2000 + i));
  const ids = Array.from({ length: 2000 }, (_, i) => i + 1);
  const reference = Array.from({ length: 100 }, (_, q) => bruteForce(items, ids, queries.data.subarray(q * D, (q + 1) * D), 10));

  it('builds the same graph from the same seed, and a larger per-search ef finds more of the true top 10', async () => {
    const settings = { m: 4, efConstruction: 16, ef: 10 };
    const a = await HnswIndex.build(items, settings);
    const b = await HnswIndex.build(items, settings);
    expect(a.search(queries, 10)).toEqual(b.search(queries, 10));
    const narrow = recallAt(a.search(queries, 10), reference);
    const wide = recallAt(a.search(queries, 10, { ef: 200 }), reference);
    expect(wide).toBeGreaterThan(narrow);
    expect(wide).toBeGreaterThanOrEqual(0.95);
    expect(recallAt(a.search(queries, 10), reference)).toBe(narrow); // the override lasts one call
    [a, b].forEach((i) => i.dispose());
  });

  it('refuses settings outside their range with a ValidationError naming the setting', async () => {
    await expect(HnswIndex.build(items, { m: 1 })).rejects.toThrow(/settings\.m: /);
  });
});

describe('ExactIndex scorers', () => {
  it('give the same hits and scores for a batch and for single queries at every size around the switch', async () => {
    for (const n of [1, 17, 2047, 2048, 2049]) {
      const all = clusteredUnitVectors(n + 8, D, new Random(n));
      const items = takeRows(all, Array.from({ length: n }, (_, i) => i));
      const queries = takeRows(all, Array.from({ length: 8 }, (_, i) => n + i));
      const js = await ExactIndex.build(items, { scorer: 'js' });
      const tfIndex = await ExactIndex.build(items, { scorer: 'tf' });
      const auto = await ExactIndex.build(items);
      const want = js.search(queries, 10);
      expect(tfIndex.search(queries, 10)).toEqual(want);
      expect(auto.search(queries, 10)).toEqual(want);
      expect(auto.search(queries.data.subarray(0, D), 10)).toEqual(want.slice(0, 1));
      [js, tfIndex, auto].forEach((i) => i.dispose());
    }
  });
});
