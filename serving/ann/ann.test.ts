import { Random } from '../../random';
import { clusteredUnitVectors } from './synthetic';
import { ExactIndex } from './exact';
import { HnswIndex } from './hnsw';
import { loadAnnIndex } from './create';
import { describeAnnIndexContract } from './testing/contract';

// Every implementation, and the exact index with each of its two scorers forced.
describeAnnIndexContract('exact (auto scorer)', { exact: true, build: (v) => ExactIndex.build(v), load: (dir) => ExactIndex.load(dir) });
describeAnnIndexContract('exact (JS scorer)', { exact: true, build: (v) => ExactIndex.build(v, { scorer: 'js' }), load: (dir) => ExactIndex.load(dir, { scorer: 'js' }) });
describeAnnIndexContract('exact (TF.js scorer)', { exact: true, build: (v) => ExactIndex.build(v, { scorer: 'tf' }), load: (dir) => ExactIndex.load(dir, { scorer: 'tf' }) });
describeAnnIndexContract('hnsw (default settings)', { exact: false, minRecall: 0.98, build: (v) => HnswIndex.build(v), load: loadAnnIndex });

describe('HnswIndex.search with rescore: false', () => {
  it("returns the graph's own k hits, best first, scored within float32 rounding, never an excluded id", async () => {
    const D = 32;
    const vectors = clusteredUnitVectors(2000, D, new Random(21));
    const queries = clusteredUnitVectors(50, D, new Random(22));
    const index = await HnswIndex.build(vectors);
    const exact = await ExactIndex.build(vectors, { scorer: 'js' });
    let overlap = 0;
    for (let q = 0; q < 50; q++) {
      const query = queries.data.subarray(q * D, (q + 1) * D);
      const exclude = new Set<number>([1, 2, 3, ...Array.from({ length: q }, (_, i) => 100 + i)]);
      const [raw] = index.search(query, 20, { ef: 40, exclude: [exclude], rescore: false });
      const [rescored] = index.search(query, 20, { ef: 40, exclude: [exclude] });
      const [truth] = exact.search(query, 20, { exclude: [exclude] });
      expect(raw?.ids.length).toBe(20);
      for (let j = 0; j < 20; j++) {
        const id = raw?.ids[j] as number;
        expect(exclude.has(id)).toBe(false);
        let dot = 0;
        for (let d = 0; d < D; d++) dot += (query[d] as number) * (vectors.data[(id - 1) * D + d] as number);
        expect(Math.abs((raw?.scores[j] as number) - dot)).toBeLessThan(1e-5);
        if (j > 0) expect(raw?.scores[j] as number).toBeLessThanOrEqual((raw?.scores[j - 1] as number) + 1e-6);
      }
      // The same neighbourhood as the rescored search (which asks for more), close to exact.
      const want = new Set(truth?.ids);
      overlap += Array.from(raw?.ids ?? []).filter((id) => want.has(id)).length / 20;
      expect(new Set(raw?.ids).size).toBe(20);
      expect(Array.from(raw?.ids ?? []).filter((id) => new Set(rescored?.ids).has(id)).length).toBeGreaterThanOrEqual(17);
    }
    expect(overlap / 50).toBeGreaterThanOrEqual(0.95);
  });

  it('still fills k hits from every item when the graph cannot (k near the size)', async () => {
    const vectors = clusteredUnitVectors(60, 8, new Random(23));
    const index = await HnswIndex.build(vectors, { m: 4, efConstruction: 8 });
    const exclude = new Set(Array.from({ length: 20 }, (_, i) => i + 1));
    const [hits] = index.search(vectors.data.subarray(0, 8), 40, { ef: 40, exclude: [exclude], rescore: false });
    expect(hits?.ids.length).toBe(40);
    expect(Array.from(hits?.ids ?? []).some((id) => exclude.has(id))).toBe(false);
  });
});
