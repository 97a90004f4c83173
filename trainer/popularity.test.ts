import { examplesFrom } from './data';
import { evaluateFixedScores, popularityScores } from './popularity';

describe('the popularity baseline', () => {
  // Items 1..4; item 3 is the most frequent training target, then 1.
  const train = examplesFrom([
    { history: [1], target: 3 },
    { history: [1, 3], target: 3 },
    { history: [2], target: 1 },
    { history: [4], target: 3 },
    { history: [2, 1], target: 1 },
    { history: [3], target: 2 },
  ]);

  it('counts training targets per item', () => {
    expect(Array.from(popularityScores(train, 4))).toEqual([0, 2, 1, 3, 0]);
  });

  it('ranks every user by it, ties counted against the target, history excluded when asked', () => {
    const scores = popularityScores(train, 4);
    const test = examplesFrom([
      { history: [1], target: 3 }, // rank 0
      { history: [3], target: 1 }, // rank 1
      { history: [1], target: 4 }, // rank 3 (nothing below it)
      { history: [3, 1], target: 2 }, // rank 2; excluding 3 and 1: rank 0
    ]);
    const kept = evaluateFixedScores(scores, test, { ks: [1, 2], excludeHistory: false });
    expect(kept.users).toBe(4);
    expect(kept.metrics['recall@1']).toBeCloseTo(1 / 4);
    expect(kept.metrics['recall@2']).toBeCloseTo(2 / 4);
    expect(kept.metrics['mrr@2']).toBeCloseTo((1 + 1 / 2) / 4);
    const excluded = evaluateFixedScores(scores, test, { ks: [1, 2], excludeHistory: true });
    // Row 2: 3 excluded, so 1 is first; row 4: 3 and 1 excluded, so 2 is first; row 3: 2 and 3 above 4.
    expect(excluded.metrics['recall@1']).toBeCloseTo(3 / 4);
    // An all-equal row (no training data) ranks every target last.
    const flat = evaluateFixedScores(new Float64Array(5), test, { ks: [3], excludeHistory: false });
    expect(flat.metrics['recall@3']).toBe(0);
  });
});
