import { tf } from '../infra/tf';
import type { Matrix } from '../infra/matrix';

/**
 * Nearest-centroid search with TF.js matmuls. Squared distances are expanded as
 * `||x||^2 - 2 x.c + ||c||^2`; the `x.c` part is one matmul per block of rows, and only the
 * per-row winners (or a short candidate list) come back to JS.
 *
 * Callers must have run `initTf()` (every `train*` / `load*` function of the quantizer does).
 */

/** Most float32 elements in one `[rows, k]` score block (32 MiB). */
const BLOCK_ELEMENTS = 1 << 23;

/**
 * The rows of a matrix uploaded once as tensors, each row augmented with a trailing 1
 * (`[rows, d + 1]`), in blocks small enough for `[block, k]` scores. With centroids uploaded as
 * `[-2 C^T; ||c||^2]` (`[d + 1, k]`), one matmul gives the scores `||c||^2 - 2 x.c`.
 */
export class RowBlocks {
  readonly blocks: ReadonlyArray<{ readonly start: number; readonly end: number; readonly tensor: tf.Tensor2D }>;

  constructor(
    readonly x: Matrix,
    k: number,
  ) {
    const d = x.cols;
    const step = Math.max(1, Math.floor(BLOCK_ELEMENTS / Math.max(k, d + 1)));
    const blocks = [];
    for (let start = 0; start < x.rows; start += step) {
      const end = Math.min(x.rows, start + step);
      const augmented = new Float32Array((end - start) * (d + 1)); // [m, d + 1]
      for (let r = start; r < end; r++) {
        const o = (r - start) * (d + 1);
        augmented.set(x.data.subarray(r * d, (r + 1) * d), o);
        augmented[o + d] = 1;
      }
      blocks.push({ start, end, tensor: tf.tensor2d(augmented, [end - start, d + 1]) });
    }
    this.blocks = blocks;
  }

  dispose(): void {
    for (const b of this.blocks) b.tensor.dispose();
  }
}

/** Centroids `[k, d]` uploaded as `[-2 C^T; ||c||^2]`: `[d + 1, k]`. */
function uploadCentroids(centroids: Matrix): tf.Tensor2D {
  const { rows: k, cols: d, data } = centroids;
  const out = new Float32Array((d + 1) * k);
  for (let j = 0; j < k; j++) {
    let norm = 0;
    for (let i = 0; i < d; i++) {
      const v = data[j * d + i] as number;
      out[i * k + j] = -2 * v;
      norm += v * v;
    }
    out[d * k + j] = norm;
  }
  return tf.tensor2d(out, [d + 1, k]);
}

/**
 * Fast nearest centroid for every row of `blocks.x` (float32 scores, so near-ties may resolve
 * differently for other block sizes) and the float64 squared distance to it. Used inside
 * k-means; encoders use {@link nearestCentroidsExact}.
 */
export function assignNearest(
  blocks: RowBlocks,
  centroids: Matrix, // [k, d]
): { codes: Int32Array; distances: Float32Array } {
  const n = blocks.x.rows;
  const codes = new Int32Array(n);
  const distances = new Float32Array(n);
  const c = uploadCentroids(centroids);
  try {
    for (const b of blocks.blocks) {
      const idx = tf.tidy(() => tf.argMin(tf.matMul(b.tensor, c), 1)); // [m]
      codes.set(idx.dataSync() as Int32Array, b.start);
      idx.dispose();
    }
  } finally {
    c.dispose();
  }
  for (let r = 0; r < n; r++) distances[r] = exactDistance(blocks.x, r, centroids, codes[r] as number);
  return { codes, distances };
}

/**
 * The `t` nearest centroids of every row, by float32 score: indices and squared distances,
 * each `[n, t]`, nearest first.
 */
export function topCandidates(
  blocks: RowBlocks,
  centroids: Matrix, // [k, d]
  xNorms: Float64Array, // [n]
  t: number,
): { indices: Int32Array; distances: Float32Array } {
  const n = blocks.x.rows;
  const indices = new Int32Array(n * t);
  const distances = new Float32Array(n * t);
  const c = uploadCentroids(centroids);
  try {
    for (const b of blocks.blocks) {
      const top = tf.tidy(() => tf.topk(tf.neg(tf.matMul(b.tensor, c)), t)); // [m, t]
      indices.set(top.indices.dataSync() as Int32Array, b.start * t);
      const negScores = top.values.dataSync() as Float32Array;
      top.indices.dispose();
      top.values.dispose();
      for (let i = 0; i < negScores.length; i++) {
        const row = b.start + Math.floor(i / t);
        distances[b.start * t + i] = Math.max(0, (xNorms[row] as number) - (negScores[i] as number));
      }
    }
  } finally {
    c.dispose();
  }
  return { indices, distances };
}

/** Squared L2 distance between row `r` of `x` and row `j` of `c`, summed in float64. */
export function exactDistance(x: Matrix, r: number, c: Matrix, j: number): number {
  const d = x.cols;
  const xo = r * d;
  const co = j * d;
  let s = 0;
  for (let i = 0; i < d; i++) {
    const t = (x.data[xo + i] as number) - (c.data[co + i] as number);
    s += t * t;
  }
  return s;
}

/** How many float32 candidates {@link nearestCentroidsExact} re-scores in float64. */
const EXACT_CANDIDATES = 4;

/**
 * Nearest centroid of every row, decided in float64 among the few nearest float32 candidates,
 * ties to the lower index. A row's code therefore depends only on that row and the centroids,
 * not on which other rows are encoded with it (the property that lets new items be coded
 * between rebuilds exactly as a full encode would code them).
 */
export function nearestCentroidsExact(
  x: Matrix, // [n, d]
  centroids: Matrix, // [k, d]
): { codes: Int32Array; distances: Float64Array } {
  const n = x.rows;
  const t = Math.min(EXACT_CANDIDATES, centroids.rows);
  const codes = new Int32Array(n);
  const distances = new Float64Array(n);
  if (n === 0) return { codes, distances };
  const blocks = new RowBlocks(x, centroids.rows);
  let top: { indices: Int32Array; distances: Float32Array };
  try {
    top = topCandidates(blocks, centroids, new Float64Array(n), t);
  } finally {
    blocks.dispose();
  }
  for (let r = 0; r < n; r++) {
    let best = -1;
    let bestDist = Infinity;
    for (let j = 0; j < t; j++) {
      const cand = top.indices[r * t + j] as number;
      const dist = exactDistance(x, r, centroids, cand);
      if (dist < bestDist || (dist === bestDist && cand < best)) {
        best = cand;
        bestDist = dist;
      }
    }
    codes[r] = best;
    distances[r] = bestDist;
  }
  return { codes, distances };
}
