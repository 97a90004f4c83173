import { initTf, tf } from '../infra/tf';
import { createLogger } from '../logging';
import type { Random } from '../random';
import { RowBlocks, assignNearest, exactDistance } from './assign';
import { assignBalanced, balancedCapacity } from './balanced';
import { KMeansSettings, checkClusterable, configErrorFrom } from './config';
import { checkMatrix, rowSquaredNorms, sampleRowIndices, takeRows, type Matrix } from '../infra/matrix';
import { ValidationError } from '../errors';

/**
 * k-means with k-means++ seeding, Lloyd iterations whose assignment step is a TF.js matmul, and
 * empty-cluster repair. Optionally balanced: every cluster takes at most a fixed number of rows
 * (see balanced.ts).
 */

const log = createLogger('quantizer.kmeans');

export interface KMeansOptions {
  /** Start from these centroids `[k, d]` instead of k-means++ (warm start). */
  readonly initialCentroids?: Matrix;
  /** Size-constrained assignment: at most `ceil(rows / k * (1 + capacitySlack))` rows per cluster. */
  readonly balanced?: { readonly capacitySlack: number };
}

export interface KMeansResult {
  readonly centroids: Matrix; // [k, d]
  /** Cluster of every row of the input, from the last assignment step (consistent with `centroids`). */
  readonly assignments: Int32Array; // [n]
  /** Squared distance of every row to its assigned centroid. */
  readonly distances: Float32Array; // [n]
  /** Sum of `distances`. */
  readonly inertia: number;
  /** Centroid updates run. */
  readonly iterations: number;
  /** Empty clusters that were refilled (summed over iterations). */
  readonly repairedClusters: number;
}

/** Fits k-means to the rows of `x` `[n, d]`. Randomness (sampling, seeding) comes only from `rng`. */
export async function kmeans(
  x: Matrix,
  k: number,
  settings: Partial<KMeansSettings>,
  rng: Random,
  options: KMeansOptions = {},
): Promise<KMeansResult> {
  await initTf();
  checkMatrix(x, 'kmeans input');
  const parsed = KMeansSettings.safeParse(settings, { reportInput: true });
  if (!parsed.success) throw configErrorFrom(parsed.error, 'kmeans settings');
  return fitKMeans(x, k, parsed.data, rng, options);
}

/** {@link kmeans} without the backend initialisation and input checks (the trainers' inner loop). */
export function fitKMeans(x: Matrix, k: number, settings: KMeansSettings, rng: Random, options: KMeansOptions = {}): KMeansResult {
  if (!Number.isInteger(k) || k < 1) throw new ValidationError(`kmeans: k must be a positive integer, received ${k}`);
  checkClusterable(x.rows, k, 'kmeans: k');
  const init = options.initialCentroids;
  if (init && (init.rows !== k || init.cols !== x.cols)) {
    throw new ValidationError(
      `kmeans: initialCentroids must be [${k}, ${x.cols}], received [${init.rows}, ${init.cols}]`,
    );
  }
  const maxTrain = k * settings.maxPointsPerCentroid;
  const sampled = x.rows > maxTrain;
  const train = sampled ? takeRows(x, sampleRowIndices(x.rows, maxTrain, rng)) : x;
  let centroids = init ? { ...init, data: init.data.slice() } : kmeansPlusPlus(train, k, settings.initSamplePerCentroid, rng);

  const trainNorms = rowSquaredNorms(train);
  const assign = (blocks: RowBlocks, norms: Float64Array, c: Matrix): { codes: Int32Array; distances: Float32Array } =>
    options.balanced
      ? assignBalanced(blocks, c, norms, balancedCapacity(blocks.x.rows, k, options.balanced.capacitySlack))
      : assignNearest(blocks, c);

  const blocks = new RowBlocks(train, k);
  let current: { codes: Int32Array; distances: Float32Array };
  let inertia: number;
  let iterations = 0;
  let repairedClusters = 0;
  try {
    current = assign(blocks, trainNorms, centroids);
    inertia = sum(current.distances);
    while (iterations < settings.iterations) {
      const update = updateCentroids(blocks, current.codes, current.distances, centroids);
      centroids = update.centroids;
      repairedClusters += update.repaired;
      iterations++;
      current = assign(blocks, trainNorms, centroids);
      const next = sum(current.distances);
      const improvement = inertia - next;
      inertia = next;
      if (settings.tolerance > 0 && improvement <= settings.tolerance * Math.max(next + improvement, Number.MIN_VALUE)) break;
    }
  } finally {
    blocks.dispose();
  }
  if (sampled) {
    const all = new RowBlocks(x, k);
    try {
      current = assign(all, rowSquaredNorms(x), centroids);
    } finally {
      all.dispose();
    }
    inertia = sum(current.distances);
  }
  log.debug({ rows: x.rows, dims: x.cols, k, iterations, inertia, repairedClusters, sampled }, 'kmeans done');
  return { centroids, assignments: current.codes, distances: current.distances, inertia, iterations, repairedClusters };
}

function sum(values: Float32Array): number {
  let s = 0;
  for (let i = 0; i < values.length; i++) s += values[i] as number;
  return s;
}

/** Below this many pool elements (rows x dims) k-means++ distances are computed in JS, above on the backend. */
const SEEDING_BACKEND_MIN_ELEMENTS = 1 << 18;

/**
 * k-means++ seeding (Arthur & Vassilvitskii 2007): the first seed uniform, each next seed drawn
 * with probability proportional to its squared distance to the nearest seed so far. Seeds are
 * drawn from a random sample of at most `k * samplePerCentroid` rows to bound the O(rows k d)
 * cost. The distances to each new seed come from a JS loop on small pools and from one
 * matrix-vector product on the backend on large ones (where a JS loop would dominate).
 */
export function kmeansPlusPlus(x: Matrix, k: number, samplePerCentroid: number, rng: Random): Matrix {
  const pool = x.rows > k * samplePerCentroid ? takeRows(x, sampleRowIndices(x.rows, k * samplePerCentroid, rng)) : x;
  const { data, cols: d, rows: m } = pool;
  const out = new Float32Array(k * d);
  const nearest = new Float64Array(m).fill(Infinity);
  const distances = seedDistances(pool);
  try {
    let chosen = rng.int(m);
    for (let j = 0; j < k; j++) {
      out.set(data.subarray(chosen * d, (chosen + 1) * d), j * d);
      if (j === k - 1) break;
      const toSeed = distances.to(chosen); // [m]
      let total = 0;
      for (let r = 0; r < m; r++) {
        const dist = r === chosen ? 0 : (toSeed[r] as number);
        if (dist < (nearest[r] as number)) nearest[r] = dist;
        total += nearest[r] as number;
      }
      if (total <= 0) {
        chosen = rng.int(m); // every row coincides with a seed: duplicates are unavoidable
        continue;
      }
      let target = rng.next() * total;
      chosen = m - 1;
      for (let r = 0; r < m; r++) {
        target -= nearest[r] as number;
        if (target < 0) {
          chosen = r;
          break;
        }
      }
    }
  } finally {
    distances.dispose();
  }
  return { data: out, rows: k, cols: d };
}

/** Squared distances from every row of `pool` to one of its rows, in JS or on the backend by size. */
function seedDistances(pool: Matrix): { to(seed: number): ArrayLike<number>; dispose(): void } {
  const { data, cols: d, rows: m } = pool;
  const out = new Float64Array(m);
  if (m * d < SEEDING_BACKEND_MIN_ELEMENTS) {
    return {
      to(seed) {
        for (let r = 0; r < m; r++) out[r] = exactDistance(pool, r, pool, seed);
        return out;
      },
      dispose() {},
    };
  }
  const norms = rowSquaredNorms(pool); // [m]
  const tensor = tf.tensor2d(data, [m, d]);
  return {
    to(seed) {
      const dotsTensor = tf.tidy(() => tf.matMul(tensor, tf.slice(tensor, [seed, 0], [1, d]), false, true)); // [m, 1]
      const dots = dotsTensor.dataSync() as Float32Array;
      dotsTensor.dispose();
      for (let r = 0; r < m; r++) out[r] = Math.max(0, (norms[r] as number) - 2 * (dots[r] as number) + (norms[seed] as number));
      return out;
    },
    dispose() {
      tensor.dispose();
    },
  };
}

/**
 * Centroid step: the mean of each cluster's rows. An empty cluster is refilled with the row
 * farthest from its own centroid (taken from a cluster that keeps at least one row), which both
 * uses the code and lowers the error the most; when no row is left to take (fewer distinct rows
 * than clusters) the empty centroid stays where it was.
 */
function updateCentroids(
  blocks: RowBlocks, // x [n, d] on the backend
  codes: Int32Array, // [n]
  distances: Float32Array, // [n]
  previous: Matrix, // [k, d]
): { centroids: Matrix; repaired: number } {
  const { rows: n, cols: d, data } = blocks.x;
  const k = previous.rows;
  const sums = clusterSums(blocks, codes, k); // [k, d]
  const counts = new Int32Array(k);
  for (let r = 0; r < n; r++) counts[codes[r] as number] = (counts[codes[r] as number] as number) + 1;
  let repaired = 0;
  const taken = new Uint8Array(n);
  for (let e = 0; e < k; e++) {
    if (counts[e] !== 0) continue;
    let far = -1;
    let farDist = 0;
    for (let r = 0; r < n; r++) {
      const dist = distances[r] as number;
      if (taken[r] === 0 && dist > farDist && (counts[codes[r] as number] as number) > 1) {
        far = r;
        farDist = dist;
      }
    }
    if (far < 0) continue;
    const from = codes[far] as number;
    taken[far] = 1;
    counts[from] = (counts[from] as number) - 1;
    counts[e] = 1;
    for (let i = 0; i < d; i++) {
      const v = data[far * d + i] as number;
      sums[from * d + i] = (sums[from * d + i] as number) - v;
      sums[e * d + i] = v;
    }
    repaired++;
  }
  const out = new Float32Array(k * d);
  for (let c = 0; c < k; c++) {
    const count = counts[c] as number;
    for (let i = 0; i < d; i++) {
      out[c * d + i] = count > 0 ? (sums[c * d + i] as number) / count : (previous.data[c * d + i] as number);
    }
  }
  return { centroids: { data: out, rows: k, cols: d }, repaired };
}

/** Below this many elements (rows x dims) cluster sums are a JS loop, above a backend segment sum. */
const SUMS_BACKEND_MIN_ELEMENTS = 1 << 21;

/** Per-cluster sums of the rows `[k, d]`, accumulated in float64. */
function clusterSums(blocks: RowBlocks, codes: Int32Array, k: number): Float64Array {
  const { data, rows: n, cols: d } = blocks.x;
  const sums = new Float64Array(k * d);
  if (n * d < SUMS_BACKEND_MIN_ELEMENTS) {
    for (let r = 0; r < n; r++) {
      const so = (codes[r] as number) * d;
      const ro = r * d;
      for (let i = 0; i < d; i++) sums[so + i] = (sums[so + i] as number) + (data[ro + i] as number);
    }
    return sums;
  }
  for (const b of blocks.blocks) {
    // Blocks are augmented with a column of ones: [m, d + 1] -> [k, d + 1] float32 partial sums.
    const part = tf.tidy(() => tf.unsortedSegmentSum(b.tensor, tf.tensor1d(codes.subarray(b.start, b.end), 'int32'), k));
    const values = part.dataSync() as Float32Array;
    part.dispose();
    for (let c = 0; c < k; c++) {
      for (let i = 0; i < d; i++) sums[c * d + i] = (sums[c * d + i] as number) + (values[c * (d + 1) + i] as number);
    }
  }
  return sums;
}
