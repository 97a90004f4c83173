import { Random } from '../random';
import { topK } from './topK';

describe('topK', () => {
  it('returns the k best indices, best first, ties by lower index, skipping NaN and -Infinity', () => {
    expect(topK([0, 5, 3, 5, Number.NaN, 9, Number.NEGATIVE_INFINITY, 1], 3)).toEqual([5, 1, 3]);
    expect(topK([1, 2, 3], 0)).toEqual([]);
    expect(topK([1, Number.NaN, 2], 5)).toEqual([2, 0]);
    expect(topK([7, 1, 2], 2, 1)).toEqual([2, 1]);
  });

  it('agrees with a full sort on random rows with ties', () => {
    const rng = new Random(3);
    for (let t = 0; t < 50; t++) {
      const scores = Array.from({ length: 1 + rng.int(300) }, () => rng.int(20) / 4);
      const k = 1 + rng.int(40);
      const sorted = scores.map((_, i) => i).sort((a, b) => (scores[b] as number) - (scores[a] as number) || a - b);
      expect(topK(scores, k)).toEqual(sorted.slice(0, k));
    }
  });
});
