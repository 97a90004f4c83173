import { initTf, tf } from '../infra/tf';
import { rankTargets } from './evaluate';
import { MetricAccumulator, hitAtK, mrrAtK, ndcgAtK, rankOfTarget, recallAtK } from './metrics';

beforeAll(async () => {
  await initTf();
});

describe('metric functions on ranks', () => {
  it('match hand-computed values', () => {
    // rank 0: first place; rank 2: third place.
    expect(recallAtK(0, 5)).toBe(1);
    expect(recallAtK(4, 5)).toBe(1);
    expect(recallAtK(5, 5)).toBe(0);
    expect(hitAtK(9, 10)).toBe(1);
    expect(hitAtK(10, 10)).toBe(0);
    expect(ndcgAtK(0, 10)).toBe(1);
    expect(ndcgAtK(1, 10)).toBeCloseTo(1 / Math.log2(3), 12); // 0.6309
    expect(ndcgAtK(2, 10)).toBe(0.5); // 1 / log2(4)
    expect(ndcgAtK(6, 10)).toBeCloseTo(1 / 3, 12); // 1 / log2(8)
    expect(ndcgAtK(10, 10)).toBe(0);
    expect(mrrAtK(0, 5)).toBe(1);
    expect(mrrAtK(3, 5)).toBe(0.25);
    expect(mrrAtK(5, 5)).toBe(0);
  });

  it('MetricAccumulator sums then averages over users', () => {
    const acc = new MetricAccumulator([1, 5]);
    acc.add(0);
    acc.add(2);
    acc.add(7);
    acc.add(4);
    const r = acc.result();
    expect(acc.users).toBe(4);
    expect(r['recall@1']).toBe(0.25);
    expect(r['recall@5']).toBe(0.75);
    expect(r['hit@5']).toBe(0.75);
    expect(r['ndcg@5']).toBeCloseTo((1 + 0.5 + 1 / Math.log2(6)) / 4, 12);
    expect(r['mrr@5']).toBeCloseTo((1 + 1 / 3 + 1 / 5) / 4, 12);
    expect(new MetricAccumulator([10]).result()['ndcg@10']).toBe(0);
  });
});

describe('rank rule', () => {
  // Index 0 is padding. Items 2, 4 and 6 tie at 0.9.
  const scores = [9, 0.5, 0.9, 0.7, 0.9, 0.1, 0.9];
  const { NaN: nan, POSITIVE_INFINITY: inf, NEGATIVE_INFINITY: ninf } = Number;

  /** Ranks by hand: `competing` is every item but padding, the target and the excluded ones. */
  const cases: ReadonlyArray<{ name: string; scores: number[]; target: number; excluded?: number[]; rank: number }> = [
    { name: 'padding never competes, even scored highest', scores: [9, 0.5, 0.8], target: 2, rank: 0 },
    { name: 'a NaN padding score is ignored', scores: [nan, 0.2, 0.5], target: 2, rank: 0 },
    { name: 'exact ties rank above the target: 4 and 6 tie with 2', scores, target: 2, rank: 2 },
    { name: 'exact ties, highest id: 2 and 4 tie with 6', scores, target: 6, rank: 2 },
    { name: 'below the three tied items', scores, target: 3, rank: 3 },
    { name: 'behind 2, 3, 4, 6', scores, target: 1, rank: 4 },
    { name: 'last of 6 items', scores, target: 5, rank: 5 },
    { name: 'ties with 2 and 4, both excluded', scores, target: 6, excluded: [2, 4], rank: 0 },
    { name: 'the target is never excluded: 4 and 6 stay above 3', scores, target: 3, excluded: [3, 2], rank: 2 },
    { name: 'all-equal row: every other item is tied above (first id)', scores: [0.5, 0.5, 0.5, 0.5, 0.5, 0.5], target: 1, rank: 4 },
    { name: 'all-equal row (last id)', scores: [0.5, 0.5, 0.5, 0.5, 0.5, 0.5], target: 5, rank: 4 },
    { name: 'all-equal row, 2 of 4 competitors excluded', scores: [0.5, 0.5, 0.5, 0.5, 0.5, 0.5], target: 1, excluded: [2, 3], rank: 2 },
    { name: 'all-NaN row: the worst rank', scores: [nan, nan, nan, nan, nan], target: 2, rank: 3 },
    { name: 'all-NaN row, item 1 excluded', scores: [nan, nan, nan, nan, nan], target: 2, excluded: [1], rank: 2 },
    { name: 'NaN target among finite scores', scores: [0, 0.1, nan, 0.3, 0.2], target: 2, rank: 3 },
    { name: 'NaN target, item 3 excluded', scores: [0, 0.1, nan, 0.3, 0.2], target: 2, excluded: [3], rank: 2 },
    { name: 'a NaN competitor ranks above', scores: [0, 0.9, nan, 0.1, 0.5], target: 1, rank: 1 },
    { name: 'a NaN competitor and a higher score rank above', scores: [0, 0.9, nan, 0.1, 0.5], target: 4, rank: 2 },
    { name: 'an excluded NaN competitor does not', scores: [0, 0.9, nan, 0.1, 0.5], target: 1, excluded: [2], rank: 0 },
    { name: '-Infinity target: the worst rank', scores: [0, ninf, 0.1, ninf, 0.2], target: 1, rank: 3 },
    { name: '-Infinity target, item 2 excluded', scores: [0, ninf, 0.1, ninf, 0.2], target: 1, excluded: [2], rank: 2 },
    { name: '+Infinity target: the worst rank', scores: [0, 0.3, inf, 0.1], target: 2, rank: 2 },
    { name: '+Infinity target, item 1 excluded', scores: [0, 0.3, inf, 0.1], target: 2, excluded: [1], rank: 1 },
    { name: 'a +Infinity competitor ranks above, a -Infinity one below', scores: [0, inf, 0.5, ninf], target: 2, rank: 1 },
  ];

  it.each(cases)('rankOfTarget: $name', (c) => {
    expect(rankOfTarget(c.scores, c.target, c.excluded ? new Set(c.excluded) : undefined)).toBe(c.rank);
  });

  it.each(cases)('rankTargets (tensors): $name', (c) => {
    const before = tf.memory().numTensors;
    const t = tf.tensor2d([c.scores]);
    const excluded = c.excluded ? { rows: new Int32Array(c.excluded.length), items: Int32Array.from(c.excluded) } : undefined;
    const r = rankTargets(t, Int32Array.of(c.target), excluded);
    expect(Array.from(r.dataSync())).toEqual([c.rank]);
    tf.dispose([t, r]);
    expect(tf.memory().numTensors).toBe(before);
  });
});
