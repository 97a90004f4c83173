import { Random } from '../random';
import { AnnConfig } from '../schemas/serving';
import { TextPrior } from '../trainer';
import { tf } from '../infra/tf';
import { createAnnIndex, type AnnIndex } from './ann';
import { clusteredUnitVectors } from './ann/synthetic';
import { OnnxItemScorer } from './onnx';
import { dot64 } from './ann/topk';
import { Ranker, withoutPadding } from './ranker';

/** `[N + 1, D]` with a zero padding row, from `[N, D]` rows. */
function padded(rows: Float32Array, dims: number): Float32Array {
  const out = new Float32Array(rows.length + dims);
  out.set(rows, dims);
  return out;
}

describe('Ranker', () => {
  const N = 3000;
  const H = 16;
  const D = 12;
  const rng = new Random(5);
  const items = padded(clusteredUnitVectors(N, H, rng).data, H);
  const text = padded(clusteredUnitVectors(N, D, rng, { clusters: 40 }).data, D);
  const indexes: AnnIndex[] = [];
  let exact: { model: AnnIndex; text: AnnIndex };
  let hnsw: { model: AnnIndex; text: AnnIndex };

  beforeAll(async () => {
    const build = async (index: 'exact' | 'hnsw') => {
      const config = AnnConfig.parse({ index });
      const built = { model: await createAnnIndex(withoutPadding(items, H), config), text: await createAnnIndex(withoutPadding(text, D), config) };
      indexes.push(built.model, built.text);
      return built;
    };
    exact = await build('exact');
    hnsw = await build('hnsw');
  });
  afterAll(() => indexes.forEach((i) => i.dispose()));

  const users = Array.from({ length: 200 }, () => {
    const u = new Float32Array(H);
    for (let j = 0; j < H; j++) u[j] = rng.normal();
    const norm = Math.hypot(...u);
    const history = Int32Array.from({ length: 1 + rng.int(8) }, () => 1 + rng.int(N));
    return { vector: u.map((x) => x / norm), history };
  });

  for (const pooling of ['max', 'mean'] as const) {
    it(`scores exactly as the trainer's fused ranking (cosine + w x ${pooling} text prior, query items at 0)`, () => {
      const settings = { weight: 0.7, lastItems: 3, pooling };
      const ranker = new Ranker({ items, hiddenSize: H, itemCount: N, index: exact.model, prior: { settings, table: text, dims: D, index: exact.text }, candidates: 50 });
      // The reference: TextPrior (what evaluation fuses) over the same text vectors.
      const prior = new TextPrior({ itemCount: N, textFields: [{ name: 'meta', dims: D, table: text }] }, settings);
      try {
        for (const user of users.slice(0, 20)) {
          const L = user.history.length;
          const batch = { size: 1, maxLength: L, items: user.history, lengths: Int32Array.of(L), targets: Int32Array.of(0) };
          const priors = tf.tidy(() => prior.scores(batch).dataSync() as Float32Array);
          const expected = Array.from({ length: N }, (_, i) => i + 1)
            .map((id) => {
              let dot = 0;
              for (let j = 0; j < H; j++) dot += (user.vector[j] as number) * (items[id * H + j] as number);
              return { id, score: dot + 0.7 * (priors[id] as number) };
            })
            .filter((e) => e.id !== user.history[0])
            .sort((a, b) => b.score - a.score || a.id - b.id)
            .slice(0, 10);
          const got = ranker.rank(user.vector, user.history, new Set([user.history[0] as number]), 10);
          expect(Array.from(got.ids)).toEqual(expected.map((e) => e.id));
          got.scores.forEach((s, j) => expect(s).toBeCloseTo(expected[j]?.score as number, 5));
        }
        if (pooling === 'max') {
          // Each query item's neighbour list settles most items: far fewer text cosines than N per query item.
          expect(ranker.stats.neighbourMisses).toBeGreaterThan(0);
          expect(ranker.stats.priorDots).toBeLessThan((20 * N * 3) / 10);
        }
      } finally {
        prior.dispose();
      }
    });

    it(`with HNSW candidates from the model and the text index (${pooling} prior), agrees with exact ranking on >= 98% of each top-10`, () => {
      const settings = { weight: 0.7, lastItems: 3, pooling };
      const exactRanker = new Ranker({ items, hiddenSize: H, itemCount: N, index: exact.model, prior: { settings, table: text, dims: D, index: exact.text }, candidates: 100 });
      const approx = new Ranker({ items, hiddenSize: H, itemCount: N, index: hnsw.model, prior: { settings, table: text, dims: D, index: hnsw.text }, candidates: 100 });
      expect(approx.exact).toBe(false);
      let overlap = 0;
      for (const user of users) {
        const exclude = new Set([user.history[0] as number]);
        const a = new Set(exactRanker.rank(user.vector, user.history, exclude, 10).ids);
        const b = approx.rank(user.vector, user.history, exclude, 10).ids;
        expect(b).toHaveLength(10);
        expect(b.includes(user.history[0] as number)).toBe(false);
        overlap += b.filter((id) => a.has(id)).length / 10;
      }
      expect(overlap / users.length).toBeGreaterThanOrEqual(0.98);
    });
  }

  it('keeps nothing of one ranking in the next (its scratch arrays are reused): interleaved users, k, pooling and index kinds rank as a fresh ranker does', () => {
    for (const pooling of ['max', 'mean'] as const) {
      const settings = { weight: 0.7, lastItems: 3, pooling };
      for (const [model, textIndex] of [[exact.model, exact.text], [hnsw.model, hnsw.text]] as const) {
        const options = { items, hiddenSize: H, itemCount: N, index: model, prior: { settings, table: text, dims: D, index: textIndex }, candidates: 50 };
        const shared = new Ranker(options);
        users.slice(0, 12).forEach((user, i) => {
          const k = [10, 1, 25, 3][i % 4] as number;
          const exclude = new Set(i % 2 === 0 ? [user.history[0] as number] : []);
          const got = shared.rank(user.vector, user.history, exclude, k);
          const want = new Ranker(options).rank(user.vector, user.history, exclude, k);
          expect(Array.from(got.ids)).toEqual(Array.from(want.ids));
          expect(Array.from(got.scores)).toEqual(Array.from(want.scores));
        });
      }
    }
    const ranker = new Ranker({ items, hiddenSize: H, itemCount: N, index: exact.model, candidates: 50 });
    expect(() => ranker.rank(new Float32Array(H + 1), Int32Array.of(1), new Set(), 10)).toThrow(/a user vector of 17 values, expected 16/);
  });

  it('ranks the same with a neighbour cache of two lists (evicting all the time) as with the default', () => {
    const settings = { weight: 0.7, lastItems: 3, pooling: 'max' as const };
    for (const [model, textIndex] of [[exact.model, exact.text], [hnsw.model, hnsw.text]] as const) {
      const roomy = new Ranker({ items, hiddenSize: H, itemCount: N, index: model, prior: { settings, table: text, dims: D, index: textIndex }, candidates: 50 });
      const tight = new Ranker({ items, hiddenSize: H, itemCount: N, index: model, prior: { settings, table: text, dims: D, index: textIndex }, candidates: 50, neighbourCache: 2 });
      for (const user of [...users.slice(0, 30), ...users.slice(0, 30)]) {
        expect(Array.from(tight.rank(user.vector, user.history, new Set(), 10).ids)).toEqual(Array.from(roomy.rank(user.vector, user.history, new Set(), 10).ids));
      }
      expect(roomy.stats.neighbourHits).toBeGreaterThan(tight.stats.neighbourHits);
    }
  });

  describe('with approximate cosines (exact path)', () => {
    const textTable = text;
    const textRow = (id: number): Float32Array => textTable.subarray(id * D, (id + 1) * D);
    const settingsOf = (weight: number) => ({ weight, lastItems: 3, pooling: 'max' as const });
    const rankers = (weight: number | undefined) => {
      const prior = weight === undefined ? {} : { prior: { settings: settingsOf(weight), table: text, dims: D, index: exact.text } };
      return { reference: new Ranker({ items, hiddenSize: H, itemCount: N, index: exact.model, ...prior, candidates: 50 }), pruned: new Ranker({ items, hiddenSize: H, itemCount: N, index: exact.model, ...prior, candidates: 50 }) };
    };

    it('ranks exactly as without them when they are off by up to the margin (ids and float64 scores)', () => {
      const margin = 0.05; // far looser than any real scorer's, so pruning errors would show
      const noise = new Random(11);
      for (const weight of [undefined, 0.7]) {
        const { reference, pruned } = rankers(weight);
        for (const user of users.slice(0, 60)) {
          const u = Float64Array.from(user.vector);
          const cosines = new Float32Array(N + 1);
          // Each cosine off by up to the margin, many at its edge.
          for (let id = 1; id <= N; id++) cosines[id] = dot64(u, items, id, H) + margin * (noise.next() < 0.3 ? (noise.next() < 0.5 ? -0.999 : 0.999) : 2 * noise.next() - 1);
          const exclude = new Set([user.history[0] as number]);
          // Query items' text-neighbour lists from text cosines off by up to the margin too.
          const missing = pruned.missingNeighbours(user.history);
          const text = new Float32Array(missing.length * (N + 1));
          missing.forEach((q, j) => {
            const row = Float64Array.from(textRow(q));
            for (let id = 1; id <= N; id++) text[j * (N + 1) + id] = dot64(row, textTable, id, D) + margin * (2 * noise.next() - 1);
          });
          pruned.fillNeighbours(missing, text, margin);
          const want = reference.rank(user.vector, user.history, exclude, 10);
          const got = pruned.rank(user.vector, user.history, exclude, 10, { cosines, margin });
          expect(Array.from(got.ids)).toEqual(Array.from(want.ids));
          expect(Array.from(got.scores)).toEqual(Array.from(want.scores));
        }
        expect(pruned.stats.approximate).toBe(60);
        if (weight !== undefined) {
          // Every list was filled ahead, none computed in rank(), and each equals the exact one.
          expect(pruned.stats.neighbourFills).toBeGreaterThan(50);
          expect(pruned.stats.neighbourMisses).toBe(0);
          for (const user of users.slice(0, 60)) {
            for (const q of user.history) {
              const want = reference.cachedNeighbours(q);
              if (want) expect(pruned.cachedNeighbours(q)).toEqual(want);
            }
          }
        } else {
          expect(pruned.missingNeighbours(users[0]?.history as Int32Array)).toEqual([]);
        }
      }
    });

    it("ranks exactly as without them with ONNX Runtime's float32 scores, which stay within the scorer's error bound", async () => {
      const scorer = await OnnxItemScorer.create(items, H);
      try {
        const { reference, pruned } = rankers(0.7);
        const queries = new Float32Array(50 * H);
        users.slice(0, 50).forEach((user, b) => queries.set(user.vector, b * H));
        const scores = await scorer.scores(queries, 50);
        expect(scores).toHaveLength(50 * (N + 1));
        for (const [b, user] of users.slice(0, 50).entries()) {
          const u = Float64Array.from(user.vector);
          const cosines = scores.subarray(b * (N + 1), (b + 1) * (N + 1));
          const margin = scorer.errorBound(Math.hypot(...user.vector));
          let worst = 0;
          for (let id = 0; id <= N; id++) worst = Math.max(worst, Math.abs((cosines[id] as number) - dot64(u, items, id, H)));
          expect(worst).toBeLessThanOrEqual(margin);
          expect(margin).toBeLessThan(1e-4);
          const got = pruned.rank(user.vector, user.history, new Set(), 10, { cosines, margin });
          const want = reference.rank(user.vector, user.history, new Set(), 10);
          expect(Array.from(got.ids)).toEqual(Array.from(want.ids));
          expect(Array.from(got.scores)).toEqual(Array.from(want.scores));
        }
        await expect(scorer.scores(new Float32Array(H + 1), 1)).rejects.toThrow(/expected \[1, 16\] queries/);
      } finally {
        await scorer.dispose();
      }
      await expect(scorer.scores(new Float32Array(H), 1)).rejects.toThrow(/after dispose/);
    });

    it('refuses approximate cosines of the wrong length', () => {
      const { pruned } = rankers(undefined);
      const user = users[0] as (typeof users)[number];
      expect(() => pruned.rank(user.vector, user.history, new Set(), 10, { cosines: new Float32Array(N), margin: 0 })).toThrow(/3000 approximate cosines for 3000 items \(expected N \+ 1\)/);
    });
  });

  it('leaves out excluded items and padding, and returns fewer than k when fewer remain', () => {
    const small = padded(clusteredUnitVectors(5, H, rng).data, H);
    return createAnnIndex(withoutPadding(small, H), AnnConfig.parse({ index: 'exact' })).then((index) => {
      const ranker = new Ranker({ items: small, hiddenSize: H, itemCount: 5, index, candidates: 10 });
      const got = ranker.rank(users[0]?.vector as Float32Array, Int32Array.of(1), new Set([2, 4]), 10);
      expect([...got.ids].sort()).toEqual([1, 3, 5]);
      index.dispose();
    });
  });
});
