import { datasetsRoot, loadDataset } from '../datasets';
import { TfidfLsaConfig, itemFieldText, tfidfLsaSpec } from '../features';
import { initTf, tf } from '../infra/tf';
import { Random } from '../random';
import { examplesFrom, makeBatch } from './data';
import { rankTargets } from './evaluate';
import { rankOfTarget } from './metrics';
import { itemIdMappingFromList, toDenseIds } from './sideInfo';
import { TextPrior } from './textPrior';
import { itWithDatasets } from '../datasets/testing/realDatasets';

beforeAll(async () => {
  await initTf();
});

/** Ranks of rows `[B][N + 1]` by both versions, with `excludedSets` (one per row, listed to rankTargets as pairs) and without exclusions. */
function rankBoth(
  rows: number[][],
  targets: number[],
  excludedSets: ReadonlyArray<ReadonlySet<number>>,
): { tensor: number[]; plain: number[]; tensorAll: number[]; plainAll: number[] } {
  const excluded = { rows: [] as number[], items: [] as number[] };
  excludedSets.forEach((set, b) =>
    set.forEach((item) => {
      excluded.rows.push(b);
      excluded.items.push(item);
    }),
  );
  const t = tf.tensor2d(rows);
  const withExclusions = rankTargets(t, Int32Array.from(targets), { rows: Int32Array.from(excluded.rows), items: Int32Array.from(excluded.items) });
  const all = rankTargets(t, Int32Array.from(targets));
  const out = {
    tensor: Array.from(withExclusions.dataSync()),
    plain: rows.map((r, b) => rankOfTarget(r, targets[b] as number, excludedSets[b])),
    tensorAll: Array.from(all.dataSync()),
    plainAll: rows.map((r, b) => rankOfTarget(r, targets[b] as number)),
  };
  tf.dispose([t, withExclusions, all]);
  return out;
}

describe('rankTargets', () => {
  it('gives rankOfTarget\'s ranks on random rows with planted ties, NaN and infinities, with and without exclusions, and leaks no tensor', () => {
    const rng = new Random(16);
    const B = 64;
    const n1 = 41;
    const special = [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY];
    const rows: number[][] = [];
    const targets: number[] = [];
    const excludedSets: Array<Set<number>> = [];
    let planted = 0;
    for (let b = 0; b < B; b++) {
      // Coarse scores (multiples of 1/8) tie often by themselves.
      const row = Array.from({ length: n1 }, () => Math.round(rng.next() * 8) / 8);
      const target = 1 + rng.int(n1 - 1);
      for (let k = rng.int(4); k > 0; k--, planted++) row[1 + rng.int(n1 - 1)] = row[target] as number;
      if (rng.next() < 0.4) row[1 + rng.int(n1 - 1)] = special[rng.int(3)] as number;
      if (b % 5 === 0) row[target] = special[rng.int(3)] as number;
      if (b % 4 === 0) row[0] = rng.next() < 0.5 ? Number.NaN : 100; // padding scored NaN or highest
      rows.push(row);
      targets.push(target);
      // Duplicates allowed; the target is never excluded.
      excludedSets.push(new Set(Array.from({ length: rng.int(8) }, () => 1 + rng.int(n1 - 1)).filter((i) => i !== target)));
    }
    expect(planted).toBeGreaterThan(B);
    const before = tf.memory().numTensors;
    const r = rankBoth(rows, targets, excludedSets);
    expect(tf.memory().numTensors).toBe(before);
    expect(r.tensor).toEqual(r.plain);
    expect(r.tensorAll).toEqual(r.plainAll);
    // Non-finite targets (every fifth row) get the worst rank: every item but padding and the target.
    for (let b = 0; b < B; b += 5) expect(r.plainAll[b]).toBe(n1 - 2);
  });

  it('an item excluded twice in a row is removed once', () => {
    const t = tf.tensor2d([[0, 0.5, 0.5, 0.5, 0.1]]);
    const twice = rankTargets(t, Int32Array.of(3), { rows: Int32Array.of(0, 0), items: Int32Array.of(1, 1) });
    expect(Array.from(twice.dataSync())).toEqual([1]); // item 2 ties above; 1 is out, 4 below
    tf.dispose([t, twice]);
  });

  const root = datasetsRoot();
  itWithDatasets('scientific')(
    `Amazon Scientific (${root}): items with identical texts score equally by text, and a target ranks below its tied twins`,
    async () => {
      const dataset = await loadDataset('scientific');
      const texts = dataset.items.map((e) => itemFieldText(e, 'meta'));
      const mapping = itemIdMappingFromList(dataset.items.map((e) => e.itemId)); // dense id = position + 1
      const n = mapping.itemCount;
      // The 16 groups of identical texts (pairs) the dataset holds.
      const byText = new Map<string, number[]>();
      texts.forEach((text, i) => byText.set(text, [...(byText.get(text) ?? []), i + 1]));
      const textGroups = [...byText.values()].filter((g) => g.length > 1);
      expect(textGroups.length).toBe(16);

      // A cheap text-only encoder (no external model): TF-IDF + LSA, 32 dims.
      const encoder = await tfidfLsaSpec(TfidfLsaConfig.parse({ dims: 32 })).fit(texts.filter((t) => t.length > 0), new Random(3));
      const vectors = await encoder.encode(texts); // [N, D]
      const d = vectors.cols;
      const table = new Float32Array((n + 1) * d); // row 0: padding
      table.set(vectors.data, d);
      const rowKey = (id: number): string => Array.from(table.subarray(id * d, (id + 1) * d)).join(',');
      for (const g of textGroups) expect(new Set(g.map(rowKey)).size).toBe(1); // identical texts -> identical vectors
      // Twins: other items with exactly the target's text vector.
      const byVector = new Map<string, number[]>();
      for (let id = 1; id <= n; id++) byVector.set(rowKey(id), [...(byVector.get(rowKey(id)) ?? []), id]);
      const twinsOf = (id: number): number[] => (byVector.get(rowKey(id)) as number[]).filter((x) => x !== id);

      // Valid and test rows whose target has twins, scored by the text prior of the last item (max pooling).
      const rows = [...(dataset.split?.valid ?? []), ...(dataset.split?.test ?? [])]
        .map((r) => ({ history: toDenseIds(mapping, r.history), target: toDenseIds(mapping, [r.target])[0] as number }))
        .filter((r) => twinsOf(r.target).length > 0);
      expect(rows.length).toBeGreaterThan(100);
      const examples = examplesFrom(rows);
      const batch = makeBatch(examples, Int32Array.from(rows, (_, i) => i), 50);
      const prior = new TextPrior({ itemCount: n, textFields: [{ name: 'meta', dims: d, table }] }, { weight: 1, lastItems: 1, pooling: 'max' });
      const scores = prior.scores(batch); // [B, N + 1]
      const ranks = rankTargets(scores, batch.targets);
      const s = scores.arraySync();
      const r = Array.from(ranks.dataSync());
      tf.dispose([scores, ranks]);
      prior.dispose();

      let tiedRows = 0;
      rows.forEach((row, b) => {
        const query = prior.queryItems(batch, b);
        // Twins that are not the query item score exactly the target's score (the query item scores 0).
        const tied = twinsOf(row.target).filter((t) => !query.includes(t));
        for (const t of tied) expect(s[b]?.[t]).toBe(s[b]?.[row.target]);
        if (tied.length > 0 && !query.includes(row.target)) {
          // Below every item scored higher and below all its tied twins, whatever their ids.
          const target = s[b]?.[row.target] as number;
          const higher = (s[b] as number[]).filter((v, id) => id > 0 && v > target).length;
          expect(r[b]).toBeGreaterThanOrEqual(higher + tied.length);
          tiedRows++;
        }
        expect(r[b]).toBe(rankOfTarget(s[b] as number[], row.target));
      });
      expect(tiedRows).toBeGreaterThan(100);
    },
  );
});
