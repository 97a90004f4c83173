import { initTf, tf } from '../infra/tf';
import { Random } from '../random';
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
  // Index 0 is padding.
  const scores = [9, 0.5, 0.9, 0.7, 0.9, 0.1, 0.9];

  it('ignores the padding item even when it scores highest', () => {
    expect(rankOfTarget(scores, 2)).toBe(0);
  });

  it('breaks ties by item id, lower id first', () => {
    // items 2, 4, 6 tie at 0.9
    expect(rankOfTarget(scores, 4)).toBe(1);
    expect(rankOfTarget(scores, 6)).toBe(2);
    // item 3 (0.7) is behind the three tied items; item 1 (0.5) behind four; item 5 last
    expect(rankOfTarget(scores, 3)).toBe(3);
    expect(rankOfTarget(scores, 1)).toBe(4);
    expect(rankOfTarget(scores, 5)).toBe(5);
  });

  it('removes excluded items but never the target', () => {
    expect(rankOfTarget(scores, 6, new Set([2, 4]))).toBe(0);
    expect(rankOfTarget(scores, 3, new Set([3, 2]))).toBe(2);
  });

  it('the tensor version gives the same ranks, with and without exclusions', () => {
    const rng = new Random(5);
    const B = 6;
    const n1 = 40;
    const rows: number[][] = [scores.concat(Array.from({ length: n1 - scores.length }, () => 0))];
    // Coarse scores so that ties are frequent; row 1 has padding scored highest.
    for (let b = 1; b < B; b++) rows.push(Array.from({ length: n1 }, () => Math.round(rng.next() * 8) / 8));
    rows[1]![0] = 100;
    const targets = Int32Array.from([4, 7, 1, 39, 20, 13]);
    const excludedSets = rows.map(() => new Set(Array.from({ length: 5 }, () => 1 + rng.int(n1 - 1))));
    const excluded = { rows: [] as number[], items: [] as number[] };
    excludedSets.forEach((set, b) =>
      set.forEach((item) => {
        if (item === targets[b]) return;
        excluded.rows.push(b);
        excluded.items.push(item);
      }),
    );
    const t = tf.tensor2d(rows.flat(), [B, n1]);
    const plain = rankTargets(t, targets);
    const withExclusions = rankTargets(t, targets, { rows: Int32Array.from(excluded.rows), items: Int32Array.from(excluded.items) });
    expect(Array.from(plain.dataSync())).toEqual(rows.map((r, b) => rankOfTarget(r, targets[b] as number)));
    expect(Array.from(withExclusions.dataSync())).toEqual(rows.map((r, b) => rankOfTarget(r, targets[b] as number, excludedSets[b])));
    expect(plain.dataSync()[0]).toBe(1);
    tf.dispose([t, plain, withExclusions]);
  });
});
