import { ValidationError } from '../errors';
import { initTf, tf } from '../infra/tf';
import { Random } from '../random';
import {
  OptimizedProductQuantizer,
  codeUtilization,
  orthogonalityError,
  polarFactor,
  quantizationMetrics,
  relativeSquaredError,
  syntheticClusters,
  trainQuantizer,
  trainOpq,
  trainPq,
  trainRq,
  trainRqKMeans,
  type Matrix,
  type QuantizerKind,
  type TrainedQuantizer,
} from './index';
import { takeRows } from '../infra/matrix';

/** Rows `z W + noise` with z ~ N(0, I_rank): every dimension correlated with the others. */
function lowRank(rows: number, d: number, rank: number, noise: number, seed: number): Matrix {
  const rng = new Random(seed);
  const w = Float64Array.from({ length: rank * d }, () => rng.normal());
  const data = new Float32Array(rows * d);
  for (let i = 0; i < rows; i++) {
    const z = Array.from({ length: rank }, () => rng.normal());
    for (let j = 0; j < d; j++) {
      let s = 0;
      for (let q = 0; q < rank; q++) s += z[q]! * w[q * d + j]!;
      data[i * d + j] = s + noise * rng.normal();
    }
  }
  return { data, rows, cols: d };
}

/** 80% of rows in one tight blob, 20% spread widely: plain k-means gives the blob few codes. */
function skewed(rows: number, d: number, seed: number): Matrix {
  const rng = new Random(seed);
  const data = new Float32Array(rows * d);
  for (let i = 0; i < rows; i++) {
    const tight = rng.next() < 0.8;
    for (let j = 0; j < d; j++) data[i * d + j] = tight ? 1 + 0.05 * rng.normal() : 4 * rng.normal();
  }
  return { data, rows, cols: d };
}

const relMse = (x: Matrix, t: TrainedQuantizer): number => relativeSquaredError(x, t.quantizer.decode(t.codes, x.rows));

describe('quantizers', () => {
  // 1,200 training rows and 60 held-out rows of the same mixture.
  const all = syntheticClusters({ rows: 1260, dims: 16, clusters: 12, clusterRank: 4, globalRank: 8 }, new Random(1)).matrix;
  const clustered = takeRows(all, Array.from({ length: 1200 }, (_, i) => i));
  const fresh = takeRows(all, Array.from({ length: 60 }, (_, i) => 1200 + i));

  beforeAll(async () => {
    await initTf();
  });

  it.each<[string, typeof trainRq]>([
    ['rq', trainRq],
    ['rqkmeans', trainRqKMeans],
  ])('%s: reconstruction error falls strictly as levels are added', async (_name, train) => {
    const errors: number[] = [];
    for (let levels = 1; levels <= 3; levels++) errors.push(relMse(clustered, await train(clustered, { levels, codesPerLevel: 16 }, new Random(3))));
    expect(errors[0]!).toBeLessThan(0.9);
    expect(errors[1]!).toBeLessThan(errors[0]! * 0.95);
    expect(errors[2]!).toBeLessThan(errors[1]! * 0.95);
  });

  it('OPQ beats PQ on data with correlated dimensions, keeps R orthogonal, and decodes to the original space', async () => {
    const x = lowRank(1000, 16, 4, 0.05, 1);
    const pq = await trainPq(x, { levels: 2, codesPerLevel: 16 }, new Random(1));
    const opq = await trainOpq(x, { levels: 2, codesPerLevel: 16 }, new Random(1));
    expect(relMse(x, opq)).toBeLessThan(0.7 * relMse(x, pq));
    const q = opq.quantizer as OptimizedProductQuantizer;
    expect(orthogonalityError(q.rotation)).toBeLessThan(1e-4);
    // Same error measured in the rotated space (R orthogonal): ||x R - pq(x R)|| = ||x - decode||.
    const rotated = q.rotate(x);
    expect(relativeSquaredError(rotated, q.pq.decode(opq.codes, x.rows))).toBeCloseTo(relMse(x, opq), 4);
  });

  it('polarFactor returns the orthogonal factor Q of M = Q S (S symmetric positive definite)', async () => {
    const d = 12;
    const rng = new Random(9);
    const q = polarFactor({ data: Float32Array.from({ length: d * d }, () => rng.normal()), rows: d, cols: d }).q;
    const b = Float64Array.from({ length: d * d }, () => rng.normal());
    const s = new Float32Array(d * d); // B B^T + I
    for (let i = 0; i < d; i++) {
      for (let j = 0; j < d; j++) {
        let v = i === j ? 1 : 0;
        for (let t = 0; t < d; t++) v += b[i * d + t]! * b[j * d + t]!;
        s[i * d + j] = v;
      }
    }
    const m = tf.tidy(() => tf.matMul(tf.tensor2d(q.data, [d, d]), tf.tensor2d(s, [d, d])).dataSync() as Float32Array);
    const result = polarFactor({ data: Float32Array.from(m), rows: d, cols: d });
    expect(result.converged).toBe(true);
    expect(result.orthogonalityError).toBeLessThan(1e-4);
    for (let i = 0; i < d * d; i++) expect(result.q.data[i]!).toBeCloseTo(q.data[i]!, 3);
  });

  it('balanced RQ-KMeans uses codes more evenly than plain RQ on skewed data', async () => {
    const x = skewed(1024, 8, 1);
    const K = 16;
    const plain = await trainRq(x, { levels: 2, codesPerLevel: K }, new Random(1));
    const balanced = await trainRqKMeans(x, { levels: 2, codesPerLevel: K }, new Random(1));
    const up = codeUtilization(plain.codes, x.rows, 2, K);
    const ub = codeUtilization(balanced.codes, x.rows, 2, K);
    for (let l = 0; l < 2; l++) {
      expect(ub[l]!.perplexity).toBeGreaterThan(2 * up[l]!.perplexity);
      expect(ub[l]!.perplexity).toBeGreaterThan(0.95 * K);
      expect(ub[l]!.fractionUsed).toBeGreaterThanOrEqual(up[l]!.fractionUsed);
      // The capacity (1024 / 16 rows per code with slack 0) holds at every level.
      const counts = new Array<number>(K).fill(0);
      for (let r = 0; r < x.rows; r++) counts[balanced.codes[r * 2 + l]!]!++;
      expect(Math.max(...counts)).toBeLessThanOrEqual(x.rows / K);
    }
  });

  const methods: Array<[QuantizerKind, number]> = [
    ['pq', 4],
    ['opq', 4],
    ['rq', 3],
    ['rqkmeans', 3],
  ];

  it.each(methods)('%s: a fixed seed gives identical codebooks and codes; another seed differs', async (method, levels) => {
    const settings = { method, levels, codesPerLevel: 16 };
    const a = await trainQuantizer(clustered, settings, new Random(7));
    const b = await trainQuantizer(clustered, settings, new Random(7));
    const c = await trainQuantizer(clustered, settings, new Random(8));
    expect(Array.from(a.codes)).toEqual(Array.from(b.codes));
    const bytes = (t: TrainedQuantizer): Buffer => Buffer.concat(t.quantizer.toArtifactFiles().map((f) => f.data));
    expect(bytes(a).equals(bytes(b))).toBe(true);
    expect(bytes(a).equals(bytes(c))).toBe(false);
  });

  it.each(methods)('%s: coding items one at a time gives what the full encode gives them', async (method, levels) => {
    const trained = await trainQuantizer(clustered, { method, levels, codesPerLevel: 16 }, new Random(4));
    const q = trained.quantizer;
    const full = q.encode(clustered);
    if (method !== 'rqkmeans') expect(Array.from(trained.codes)).toEqual(Array.from(full)); // table codes = encode
    const rows = Array.from({ length: 40 }, (_, i) => i * 29);
    for (const r of rows) {
      expect(Array.from(q.encode(takeRows(clustered, [r])))).toEqual(Array.from(full.subarray(r * levels, (r + 1) * levels)));
    }
    const freshAll = q.encode(fresh);
    for (let r = 0; r < fresh.rows; r++) {
      expect(Array.from(q.encode(takeRows(fresh, [r])))).toEqual(Array.from(freshAll.subarray(r * levels, (r + 1) * levels)));
    }
    // Held-out items of the same distribution are coded about as well as the training items.
    const m = quantizationMetrics(freshAll, fresh.rows, levels, 16, { x: fresh, recon: q.decode(freshAll, fresh.rows) });
    expect(m.relMse!).toBeLessThan(1.5 * relativeSquaredError(clustered, q.decode(full, clustered.rows)));
  });

  it('encode/decode check their input and leak no tensors', async () => {
    const { quantizer: q } = await trainRq(clustered, { levels: 2, codesPerLevel: 8 }, new Random(1));
    const { quantizer: o } = await trainOpq(clustered, { levels: 2, codesPerLevel: 8, opq: { rotationIterations: 2 } }, new Random(1));
    const before = tf.memory().numTensors;
    for (const quantizer of [q, o, (o as OptimizedProductQuantizer).pq]) quantizer.decode(quantizer.encode(clustered), clustered.rows);
    polarFactor((o as OptimizedProductQuantizer).rotation);
    expect(tf.memory().numTensors).toBe(before);
    expect(() => q.decode(Uint16Array.from([0, 8]), 1)).toThrow(/code 8 at row 0, level 1 is out of range \[0, 8\)/);
    expect(() => q.decode(Uint16Array.from([0]), 1)).toThrow(/expected rows \* levels = 1 \* 2/);
    expect(() => q.encode({ data: new Float32Array(10), rows: 2, cols: 5 })).toThrow(ValidationError);
    expect(() => q.encode({ data: new Float32Array(10), rows: 2, cols: 5 })).toThrow(/must have 16 columns/);
  });
});
