import { mkdtempSync, readdirSync, rmSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Random } from '../../random';
import { AnnIndexCache, type SharedAnnIndex } from './cache';
import { createAnnIndex } from './create';
import type { HnswIndex } from './hnsw';
import { clusteredUnitVectors } from './synthetic';

describe('AnnIndexCache', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'streamrec-ann-cache-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const hnsw = { index: 'hnsw' as const, hnsw: { m: 8, efConstruction: 40, ef: 50 } };
  const vectors = clusteredUnitVectors(600, 16, new Random(3));
  const queries = clusteredUnitVectors(20, 16, new Random(4));

  it('builds once, then loads the same graph for the same vectors and settings; other vectors or settings are other entries', async () => {
    const cache = new AnnIndexCache(path.join(dir, 'a'));
    const built = await cache.getOrBuild(vectors, hnsw);
    built.dispose(); // nothing in use: the next one comes from the directory
    const loaded = await cache.getOrBuild(vectors, hnsw);
    expect([cache.misses, cache.hits, cache.shared]).toEqual([1, 1, 0]);
    expect(loaded.kind).toBe('hnsw');
    const fresh = await createAnnIndex(vectors, hnsw);
    const a = fresh.search(queries, 10);
    const b = loaded.search(queries, 10);
    a.forEach((hits, q) => expect(Array.from(b[q]?.ids ?? [])).toEqual(Array.from(hits.ids)));
    fresh.dispose();
    // ef is a search setting: the same entry, searched with the ef asked for.
    const otherEf = (await cache.getOrBuild(vectors, { ...hnsw, hnsw: { ...hnsw.hnsw, ef: 20 } })) as SharedAnnIndex;
    expect([cache.misses, cache.hits, (otherEf.index as HnswIndex).settings.ef]).toEqual([1, 2, 20]);
    otherEf.dispose();
    (await cache.getOrBuild(vectors, { ...hnsw, hnsw: { ...hnsw.hnsw, m: 12 } })).dispose();
    (await cache.getOrBuild(clusteredUnitVectors(600, 16, new Random(5)), hnsw)).dispose();
    expect([cache.misses, cache.hits]).toEqual([3, 2]);
    expect(readdirSync(path.join(dir, 'a'))).toHaveLength(3);
    // Exact indexes are not cached.
    (await cache.getOrBuild(vectors, { index: 'exact' })).dispose();
    expect(readdirSync(path.join(dir, 'a'))).toHaveLength(3);
    loaded.dispose();
  });

  it('shares an index in use: one graph for every holder, disposed with the last handle; a handle takes no new items', async () => {
    const cache = new AnnIndexCache(path.join(dir, 'c'));
    const [first, second] = (await Promise.all([cache.getOrBuild(vectors, hnsw), cache.getOrBuild(vectors, hnsw)])) as SharedAnnIndex[];
    const third = (await cache.getOrBuild(vectors, hnsw)) as SharedAnnIndex;
    expect([cache.misses, cache.hits, cache.shared]).toEqual([1, 0, 2]);
    expect(second?.index).toBe(first?.index);
    expect(third.index).toBe(first?.index);
    const before = third.search(queries, 10);
    first?.dispose();
    first?.dispose(); // twice: still one release
    second?.dispose();
    expect(third.search(queries, 10).map((h) => Array.from(h.ids))).toEqual(before.map((h) => Array.from(h.ids)));
    expect(() => third.add([601], { data: new Float32Array(16), rows: 1, cols: 16 })).toThrow('takes no new items');
    expect(() => first?.search(queries, 10)).toThrow('after its dispose');
    third.dispose();
    expect(() => third.index.search(queries, 10)).toThrow(); // the graph itself is gone with the last handle
    const again = await cache.getOrBuild(vectors, hnsw); // from the directory now
    expect([cache.misses, cache.hits, cache.shared]).toEqual([1, 1, 2]);
    again.dispose();
  });

  it('rebuilds a corrupt entry, and keeps at most `keep` entries', async () => {
    const root = path.join(dir, 'b');
    const cache = new AnnIndexCache(root, 2);
    (await cache.getOrBuild(vectors, hnsw)).dispose();
    const [entry] = readdirSync(root);
    truncateSync(path.join(root, entry as string, 'hnsw.bin'), 100);
    const again = await cache.getOrBuild(vectors, hnsw); // the truncated file fails the load's checks
    expect([cache.misses, cache.hits]).toEqual([2, 0]);
    expect(again.search(queries, 10)[0]?.ids).toHaveLength(10);
    again.dispose();
    expect((await cache.getOrBuild(vectors, hnsw)).kind).toBe('hnsw');
    expect(cache.hits).toBe(1);
    for (const seed of [6, 7, 8]) (await cache.getOrBuild(clusteredUnitVectors(300, 16, new Random(seed)), hnsw)).dispose();
    expect(readdirSync(root).filter((n) => !n.startsWith('.'))).toHaveLength(2);
  });
});
