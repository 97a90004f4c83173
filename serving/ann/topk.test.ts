import { Random } from '../../random';
import { TopK, dot64 } from './topk';

describe('TopK', () => {
  it('keeps the best k, best first, equal scores by lower id (the example in its doc)', () => {
    const top = new TopK(2);
    top.push(7, 0.5);
    top.push(3, 0.9);
    top.push(5, 0.5);
    const { ids, scores } = top.drain();
    expect(Array.from(ids)).toEqual([3, 5]);
    expect(Array.from(scores)).toEqual([0.9, 0.5]);
    expect(top.size).toBe(0);
  });

  it('agrees with a full sort on random scores with many ties, for every k', () => {
    const rng = new Random(5);
    const pairs = Array.from({ length: 200 }, (_, i) => ({ id: i + 1, score: rng.int(20) / 20 }));
    rng.shuffle(pairs);
    const sorted = [...pairs].sort((a, b) => (a.score !== b.score ? b.score - a.score : a.id - b.id));
    for (const k of [0, 1, 7, 50, 200, 300]) {
      const top = new TopK(k);
      for (const p of pairs) top.push(p.id, p.score);
      const got = top.drain();
      expect(Array.from(got.ids)).toEqual(sorted.slice(0, k).map((p) => p.id));
    }
  });

  it('reset starts a new selection of any k on the same object, as a new TopK would', () => {
    const rng = new Random(9);
    const reused = new TopK(3);
    for (const k of [3, 1, 12, 5, 0, 40, 2]) {
      const pairs = Array.from({ length: 60 }, (_, i) => ({ id: i + 1, score: rng.int(10) / 10 }));
      const fresh = new TopK(k);
      reused.reset(k);
      expect(reused.k).toBe(k);
      expect(reused.size).toBe(0);
      for (const p of pairs) {
        fresh.push(p.id, p.score);
        reused.push(p.id, p.score);
        expect(reused.threshold).toBe(fresh.threshold);
      }
      const a = fresh.drain();
      const b = reused.drain();
      expect(Array.from(b.ids)).toEqual(Array.from(a.ids));
      expect(Array.from(b.scores)).toEqual(Array.from(a.scores));
    }
    // Reset mid-selection: nothing of the earlier pairs is kept.
    reused.reset(2).push(1, 0.9);
    reused.reset(2).push(2, 0.1);
    expect(Array.from(reused.drain().ids)).toEqual([2]);
  });
});

describe('dot64', () => {
  it('is the inner product of a float64 query and a float32 row, any width', () => {
    const rows = new Float32Array([1, 2, 3, 4, 5, 0.5, -1, 2, 0, 1]); // two rows of 5
    const q = new Float64Array([1, 0, -1, 0.5, 2]);
    expect(dot64(q, rows, 0, 5)).toBe(1 - 3 + 2 + 10);
    expect(dot64(q, rows, 1, 5)).toBe(0.5 + 0 - 2 + 0 + 2);
  });
});
