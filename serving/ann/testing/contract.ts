import { promises as fs } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ArtifactError, ValidationError } from '../../../errors';
import { createMatrix, takeRows, type Matrix } from '../../../infra/matrix';
import { tf } from '../../../infra/tf';
import { Random } from '../../../random';
import type { AnnHits, AnnIndex } from '../annIndex';
import { clusteredUnitVectors } from '../synthetic';

/**
 * The behaviour every {@link AnnIndex} implementation must have, written once and run on each
 * (`describeAnnIndexContract('hnsw', { build: (v) => HnswIndex.build(v), load: HnswIndex.load })`).
 * Answers are checked against {@link bruteForce}, a plain loop written independently of the
 * implementations: identical ids (and scores to 1e-12) for an exact index, recall@10 >=
 * `minRecall` for an approximate one.
 */

export interface AnnContractSubject {
  /** Builds an index over `vectors` `[N, D]` (row r is item r + 1). */
  build(vectors: Matrix): Promise<AnnIndex>;
  /** Reopens what `save(dir)` wrote. */
  load(dir: string): Promise<AnnIndex>;
  /** True for exact search: answers must equal brute force. */
  readonly exact: boolean;
  /** Least recall@10 against brute force for an approximate index (default 0.98). */
  readonly minRecall?: number;
}

/** Brute-force top-k (score descending, then id ascending) by a sequential float64 sum: the reference. */
export function bruteForce(items: Matrix, ids: ArrayLike<number>, query: ArrayLike<number>, k: number, exclude?: ReadonlySet<number>): { ids: number[]; scores: number[] } {
  const scored: Array<{ id: number; score: number }> = [];
  for (let r = 0; r < items.rows; r++) {
    const id = ids[r] as number;
    if (exclude?.has(id)) continue;
    let s = 0;
    for (let j = 0; j < items.cols; j++) s += (query[j] as number) * (items.data[r * items.cols + j] as number);
    scored.push({ id, score: s });
  }
  scored.sort((a, b) => (a.score !== b.score ? b.score - a.score : a.id - b.id));
  const top = scored.slice(0, k);
  return { ids: top.map((s) => s.id), scores: top.map((s) => s.score) };
}

/** Mean share of the reference's ids that each query's hits contain (recall@k). */
export function recallAt(hits: AnnHits[], reference: Array<{ ids: number[] }>): number {
  let sum = 0;
  for (let q = 0; q < hits.length; q++) {
    const want = new Set((reference[q] as { ids: number[] }).ids);
    const got = Array.from((hits[q] as AnnHits).ids).filter((id) => want.has(id)).length;
    sum += want.size === 0 ? 1 : got / want.size;
  }
  return sum / Math.max(1, hits.length);
}

function denseIds(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i + 1);
}

const N = 3000;
const D = 64;
const Q = 100;
const K = 10;

export function describeAnnIndexContract(name: string, subject: AnnContractSubject): void {
  describe(`AnnIndex contract: ${name}`, () => {
    const rng = new Random(17);
    const all = clusteredUnitVectors(N + Q + 20, D, rng); // items, queries, spare vectors to add
    const items = takeRows(all, Array.from({ length: N }, (_, i) => i));
    const queries = takeRows(all, Array.from({ length: Q }, (_, i) => N + i));
    const spare = takeRows(all, Array.from({ length: 20 }, (_, i) => N + Q + i));
    const ids = denseIds(N);
    const reference = Array.from({ length: Q }, (_, q) => bruteForce(items, ids, queries.data.subarray(q * D, (q + 1) * D), K));
    const minRecall = subject.minRecall ?? 0.98;
    let index: AnnIndex;
    let dir: string;

    beforeAll(async () => {
      index = await subject.build(items);
      dir = await mkdtemp(path.join(tmpdir(), 'streamrec-ann-'));
    });
    afterAll(async () => {
      index?.dispose();
      await rm(dir, { recursive: true, force: true });
    });

    function checkAnswers(hits: AnnHits[], want: Array<{ ids: number[]; scores: number[] }>): void {
      expect(hits).toHaveLength(want.length);
      if (subject.exact) {
        for (let q = 0; q < want.length; q++) {
          expect(Array.from((hits[q] as AnnHits).ids)).toEqual((want[q] as { ids: number[] }).ids);
          (want[q] as { scores: number[] }).scores.forEach((s, i) => expect((hits[q] as AnnHits).scores[i]).toBeCloseTo(s, 12));
        }
      } else {
        expect(recallAt(hits, want)).toBeGreaterThanOrEqual(minRecall);
      }
    }

    it('describes itself: dims, size, kind', () => {
      expect(index.dims).toBe(D);
      expect(index.size).toBe(N);
      expect(['exact', 'hnsw']).toContain(index.kind);
      expect(index.has(1) && index.has(N) && !index.has(0) && !index.has(N + 1)).toBe(true);
    });

    it(`returns the top ${K} of brute force (${'exact: the same ids and scores; approximate: recall@10 >= the minimum'}), best first, with each hit's exact score`, () => {
      const hits = index.search(queries, K);
      checkAnswers(hits, reference);
      for (let q = 0; q < Q; q++) {
        const h = hits[q] as AnnHits;
        expect(h.ids).toHaveLength(K);
        for (let i = 0; i < h.ids.length; i++) {
          const id = h.ids[i] as number;
          expect(id).toBeGreaterThanOrEqual(1);
          expect(id).toBeLessThanOrEqual(N);
          const own = bruteForce(takeRows(items, [id - 1]), [id], queries.data.subarray(q * D, (q + 1) * D), 1);
          expect(h.scores[i]).toBeCloseTo(own.scores[0] as number, 12);
          if (i > 0) expect(h.scores[i - 1] as number).toBeGreaterThanOrEqual(h.scores[i] as number);
        }
      }
    });

    it('takes the queries as a Matrix or as a flat Float32Array [B * D], one query at a time or batched, with the same answers', () => {
      const batched = index.search(queries, K);
      const flat = index.search(queries.data, K);
      const single = Array.from({ length: 5 }, (_, q) => index.search(queries.data.subarray(q * D, (q + 1) * D), K)[0] as AnnHits);
      expect(flat).toEqual(batched);
      expect(single).toEqual(batched.slice(0, 5));
    });

    it('orders equal scores by lower id first and never returns id 0', async () => {
      const small = createMatrix(30, D);
      small.data.set(items.data.subarray(0, 30 * D));
      for (const dup of [4, 11, 25]) small.data.set(items.data.subarray(7 * D, 8 * D), dup * D); // ids 5, 12, 26 copy id 8
      const dupIndex = await subject.build(small);
      try {
        const [hits] = dupIndex.search(items.data.subarray(7 * D, 8 * D), 4);
        expect(Array.from((hits as AnnHits).ids)).toEqual([5, 8, 12, 26]);
        expect(new Set((hits as AnnHits).scores).size).toBe(1);
        const [cut] = dupIndex.search(items.data.subarray(7 * D, 8 * D), 2); // the tie straddles the k-th place
        expect(Array.from((cut as AnnHits).ids)).toEqual([5, 8]);
        expect(dupIndex.search(queries, 30).every((h) => !h.ids.includes(0) && h.ids.length === 30)).toBe(true);
      } finally {
        dupIndex.dispose();
      }
    });

    it('leaves out excluded ids and still returns k hits, for short and long exclusion lists', () => {
      const shortLists = reference.map((r, q) => new Set([...r.ids.slice(0, 5), N + 50, q + 1])); // the top 5, an unknown id, one more
      const longLists = reference.map((r) => {
        const s = new Set(r.ids); // the whole top 10, then every 7th id up to 300 ids
        for (let i = 1; s.size < 300; i += 7) s.add(i);
        return s;
      });
      for (const lists of [shortLists, longLists]) {
        const hits = index.search(queries, K, { exclude: lists });
        const want = lists.map((ex, q) => bruteForce(items, ids, queries.data.subarray(q * D, (q + 1) * D), K, ex));
        hits.forEach((h, q) => {
          expect(h.ids).toHaveLength(K);
          expect(Array.from(h.ids).some((id) => (lists[q] as Set<number>).has(id))).toBe(false);
        });
        checkAnswers(hits, want);
      }
      // Arrays work as well as sets; undefined means no exclusion for that query.
      const [a, b] = index.search(takeRows(queries, [0, 1]), K, { exclude: [reference[0]?.ids.slice(0, 3), undefined] });
      expect(Array.from((a as AnnHits).ids)).not.toContain(reference[0]?.ids[0]);
      checkAnswers([b as AnnHits], [reference[1] as { ids: number[]; scores: number[] }]);
    });

    it('returns every remaining item when k exceeds the index, and nothing for k = 0 or an empty batch', async () => {
      const small = await subject.build(takeRows(items, denseIds(20).map((i) => i - 1)));
      try {
        const [all20] = small.search(queries.data.subarray(0, D), 50);
        expect(Array.from((all20 as AnnHits).ids).sort((x, y) => x - y)).toEqual(denseIds(20));
        const [some] = small.search(queries.data.subarray(0, D), 50, { exclude: [[1, 2, 3, 4, 5, 99]] });
        expect((some as AnnHits).ids).toHaveLength(15);
        const [none] = small.search(queries.data.subarray(0, D), 50, { exclude: [denseIds(20)] });
        expect((none as AnnHits).ids).toHaveLength(0);
      } finally {
        small.dispose();
      }
      expect(index.search(new Float32Array(0), K)).toEqual([]);
      expect(index.search(createMatrix(0, D), K)).toEqual([]);
      const zero = index.search(takeRows(queries, [0, 1]), 0);
      expect(zero.map((h) => h.ids.length)).toEqual([0, 0]);
    });

    it('starts empty when built from no rows, answers nothing, then finds what is added', async () => {
      const empty = await subject.build(createMatrix(0, D));
      try {
        expect(empty.size).toBe(0);
        expect(empty.search(queries, K).every((h) => h.ids.length === 0)).toBe(true);
        empty.add([1, 2], takeRows(spare, [0, 1]));
        expect(Array.from(empty.search(spare.data.subarray(D, 2 * D), K)[0]?.ids ?? [])).toEqual([2, 1]);
      } finally {
        empty.dispose();
      }
    });

    it('rejects a query of the wrong width, a bad k or exclusion list with a ValidationError naming what was expected and received', () => {
      expect(() => index.search(createMatrix(2, 32), K)).toThrow(ValidationError);
      expect(() => index.search(createMatrix(2, 32), K)).toThrow(/\[B, 64\].*received \[2, 32\]/);
      expect(() => index.search(new Float32Array(100), K)).toThrow(/B \* 64 values; received 100 values/);
      expect(() => index.search(new Float32Array(D).fill(Number.NaN), K)).toThrow(/finite.*NaN/);
      expect(() => index.search(queries, -1)).toThrow(/k must be a non-negative integer, received number -1/);
      expect(() => index.search(queries, 2.5)).toThrow(ValidationError);
      expect(() => index.search(queries, K, { exclude: [[1]] })).toThrow(/exclude must have one entry per query \(100\), received array\(1\)/);
      expect(() => index.search(queries, K, { ef: 0 })).toThrow(/ef must be a positive integer/);
    });

    it('adds new items under new ids (gaps allowed), finds them, and refuses an id it holds, id 0 or a vector of the wrong width', async () => {
      const grown = await subject.build(takeRows(items, denseIds(500).map((i) => i - 1)));
      try {
        grown.add([501, 502, 600], takeRows(spare, [0, 1, 2]));
        expect(grown.size).toBe(503);
        expect(grown.has(600) && !grown.has(503)).toBe(true);
        for (const [row, id] of [[0, 501], [1, 502], [2, 600]] as const) {
          const [hits] = grown.search(spare.data.subarray(row * D, (row + 1) * D), 5);
          expect((hits as AnnHits).ids[0]).toBe(id);
          expect((hits as AnnHits).scores[0]).toBeCloseTo(1, 5);
        }
        expect(() => grown.add([501], takeRows(spare, [3]))).toThrow(/item 501 \(ids\[0\]\) is already indexed/);
        expect(() => grown.add([0], takeRows(spare, [3]))).toThrow(/ids\[0\] must be an integer item id in \[1, .*received number 0/);
        expect(() => grown.add([700, 700], takeRows(spare, [3, 4]))).toThrow(/item 700 appears twice/);
        expect(() => grown.add([700], createMatrix(1, 32))).toThrow(/vectors must have 64 columns, received 32/);
        expect(() => grown.add([700, 701], takeRows(spare, [3]))).toThrow(/ids has 2 entries but vectors has 1 rows/);
        expect(grown.size).toBe(503);
        // Many more than the initial capacity: the index grows.
        const more = clusteredUnitVectors(600, D, new Random(5));
        grown.add(denseIds(600).map((i) => 1000 + i), more);
        expect(grown.size).toBe(1103);
        const [last] = grown.search(more.data.subarray(599 * D), 1);
        expect(Array.from((last as AnnHits).ids)).toEqual([1600]);
      } finally {
        grown.dispose();
      }
    });

    it('answers the same after save and load, also after adding items, and records itself in the manifest', async () => {
      const target = path.join(dir, 'saved');
      const manifest = await index.save(target, { createdBy: 'contract test' });
      expect(manifest).toMatchObject({ kind: index.kind, dims: D, count: N, createdBy: { job: 'contract test' } });
      const loaded = await subject.load(target);
      try {
        expect([loaded.kind, loaded.dims, loaded.size]).toEqual([index.kind, D, N]);
        expect(loaded.search(queries, K)).toEqual(index.search(queries, K));
        checkAnswers(loaded.search(queries, K), reference);
      } finally {
        loaded.dispose();
      }
      const grown = await subject.build(takeRows(items, denseIds(300).map((i) => i - 1)));
      try {
        grown.add([301, 400], takeRows(spare, [0, 1]));
        await grown.save(target); // replaces the earlier index
        const again = await subject.load(target);
        expect(again.size).toBe(302);
        expect(again.search(spare, K)).toEqual(grown.search(spare, K));
        again.add([302], takeRows(spare, [2]));
        expect(again.search(spare.data.subarray(2 * D, 3 * D), 1)[0]?.ids[0]).toBe(302);
        again.dispose();
      } finally {
        grown.dispose();
      }
    });

    it('rejects a missing, truncated or corrupt saved index with an ArtifactError naming the file', async () => {
      const target = path.join(dir, 'damaged');
      const manifest = await index.save(target);
      const copy = async (): Promise<string> => {
        const to = path.join(dir, `copy-${Math.random().toString(36).slice(2)}`);
        await fs.cp(target, to, { recursive: true });
        return to;
      };
      await expect(subject.load(path.join(dir, 'nothing-here'))).rejects.toThrow(ArtifactError);
      for (const file of manifest.files) {
        const truncated = await copy();
        const data = await fs.readFile(path.join(truncated, file.name));
        await fs.writeFile(path.join(truncated, file.name), data.subarray(0, data.length >> 1));
        await expect(subject.load(truncated)).rejects.toThrow(new RegExp(`${file.name.replace('.', '\\.')} has \\d+ bytes, the manifest says ${file.bytes} \\(truncated`));
        const flipped = await copy();
        data[data.length - 3] = (data[data.length - 3] as number) ^ 0xff;
        await fs.writeFile(path.join(flipped, file.name), data);
        await expect(subject.load(flipped)).rejects.toThrow(new RegExp(`${file.name.replace('.', '\\.')} does not match its sha256`));
      }
      const badJson = await copy();
      await fs.writeFile(path.join(badJson, 'manifest.json'), '{"kind": "exa');
      await expect(subject.load(badJson)).rejects.toThrow(/not valid JSON/);
      const wrongDims = await copy();
      await fs.writeFile(path.join(wrongDims, 'manifest.json'), JSON.stringify({ ...manifest, dims: 32 }));
      await expect(subject.load(wrongDims)).rejects.toThrow(ArtifactError);
      await expect(subject.load(wrongDims)).rejects.toThrow(/expected a float32 array \[3000, 32\].*found float32 \[3000, 64\]/);
      const extraKey = await copy();
      await fs.writeFile(path.join(extraKey, 'manifest.json'), JSON.stringify({ ...manifest, note: 'x' }));
      await expect(subject.load(extraKey)).rejects.toThrow(/manifest.*is invalid/);
      await expect(index.save(dir)).rejects.toThrow(/holds other files/);
    });

    it('holds no TF.js tensors beyond its own across searches and adds, and releases them on dispose', async () => {
      const before = tf.memory().numTensors;
      const own = await subject.build(takeRows(items, denseIds(400).map((i) => i - 1)));
      own.search(queries, K);
      const held = tf.memory().numTensors;
      for (let i = 0; i < 3; i++) own.search(queries, K, { exclude: reference.map((r) => r.ids.slice(0, 2)) });
      own.search(queries.data.subarray(0, D), K);
      expect(tf.memory().numTensors).toBe(held);
      own.add([401], takeRows(spare, [0]));
      own.search(queries, K);
      expect(tf.memory().numTensors).toBe(held);
      own.dispose();
      expect(tf.memory().numTensors).toBe(before);
      expect(() => own.search(queries, K)).toThrow(/disposed/);
    });
  });
}
