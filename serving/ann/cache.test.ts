import { mkdtempSync, readdirSync, rmSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Random } from '../../random';
import { AnnIndexCache } from './cache';
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
    const loaded = await cache.getOrBuild(vectors, hnsw);
    expect([cache.misses, cache.hits]).toEqual([1, 1]);
    expect(loaded.kind).toBe('hnsw');
    const a = built.search(queries, 10);
    const b = loaded.search(queries, 10);
    a.forEach((hits, q) => expect(Array.from(b[q]?.ids ?? [])).toEqual(Array.from(hits.ids)));
    // ef is a search setting: the same entry, searched with the ef asked for.
    const otherEf = await cache.getOrBuild(vectors, { ...hnsw, hnsw: { ...hnsw.hnsw, ef: 20 } });
    expect([cache.misses, cache.hits, (otherEf as HnswIndex).settings.ef]).toEqual([1, 2, 20]);
    otherEf.dispose();
    (await cache.getOrBuild(vectors, { ...hnsw, hnsw: { ...hnsw.hnsw, m: 12 } })).dispose();
    (await cache.getOrBuild(clusteredUnitVectors(600, 16, new Random(5)), hnsw)).dispose();
    expect([cache.misses, cache.hits]).toEqual([3, 2]);
    expect(readdirSync(path.join(dir, 'a'))).toHaveLength(3);
    // Exact indexes are not cached.
    (await cache.getOrBuild(vectors, { index: 'exact' })).dispose();
    expect(readdirSync(path.join(dir, 'a'))).toHaveLength(3);
    [built, loaded].forEach((i) => i.dispose());
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
