import { Random } from '../random';
import { sampleNegatives } from './sampler';

describe('sampleNegatives', () => {
  it('draws distinct items, never a positive of the batch nor padding', () => {
    const rng = new Random(1);
    for (let trial = 0; trial < 200; trial++) {
      const positives = Int32Array.from({ length: 16 }, () => 1 + rng.int(100));
      const negatives = sampleNegatives(100, positives, 49, rng);
      expect(negatives.length).toBe(49);
      expect(new Set(negatives).size).toBe(49);
      const banned = new Set(positives);
      for (const v of negatives) {
        expect(v).toBeGreaterThanOrEqual(1);
        expect(v).toBeLessThanOrEqual(100);
        expect(banned.has(v)).toBe(false);
      }
    }
  });

  it('uses the dense path when most items are needed and returns every allowed item when fewer are left', () => {
    const rng = new Random(2);
    const positives = Int32Array.from([1, 2, 3, 3]);
    const dense = sampleNegatives(20, positives, 15, rng);
    expect(new Set(dense).size).toBe(15);
    for (const v of dense) expect(v).toBeGreaterThan(3);
    const all = sampleNegatives(20, positives, 50, rng);
    expect([...all].sort((a, b) => a - b)).toEqual(Array.from({ length: 17 }, (_, i) => i + 4));
    expect(sampleNegatives(3, Int32Array.from([1, 2, 3]), 5, rng).length).toBe(0);
  });

  it('is uniform over the allowed items and repeatable for a seed', () => {
    const rng = new Random(3);
    const counts = new Array(31).fill(0) as number[];
    for (let t = 0; t < 20_000; t++) for (const v of sampleNegatives(30, Int32Array.from([7]), 5, rng)) counts[v]!++;
    expect(counts[0]).toBe(0);
    expect(counts[7]).toBe(0);
    const expected = (20_000 * 5) / 29;
    for (let i = 1; i <= 30; i++) if (i !== 7) expect(Math.abs((counts[i] as number) - expected) / expected).toBeLessThan(0.06);
    expect(Array.from(sampleNegatives(1000, [5], 10, new Random(9)))).toEqual(Array.from(sampleNegatives(1000, [5], 10, new Random(9))));
  });
});
