import { RowBlocks, topCandidates } from './assign';
import { rowSquaredNorms, takeRows, type Matrix } from '../infra/matrix';

/**
 * Size-constrained assignment for balanced k-means (the `rqkmeans` method).
 *
 * Every centroid takes at most `capacity` rows. Rows are placed greedily, the rows with the most
 * to lose first: ordered by regret (distance to the second-nearest centroid minus distance to
 * the nearest), each row goes to the nearest centroid among its `CANDIDATES` nearest that still
 * has room; rows whose candidates are all full are placed afterwards, in the same order, at the
 * nearest centroid with room (all centroids ranked, one matmul). With `capacity * k >= rows`
 * every row is placed. This is a heuristic for the capacitated assignment problem (like Sinkhorn
 * with rounding, it is not the exact optimum), deterministic for given inputs.
 */

const CANDIDATES = 16;

/** Most rows one centroid may take: `ceil(rows / k * (1 + slack))`. */
export function balancedCapacity(rows: number, k: number, slack: number): number {
  return Math.max(1, Math.ceil((rows / k) * (1 + slack) - 1e-9));
}

/** Assigns every row of `blocks.x` under a per-centroid capacity; returns codes and squared distances. */
export function assignBalanced(
  blocks: RowBlocks,
  centroids: Matrix, // [k, d]
  xNorms: Float64Array, // [n]
  capacity: number,
): { codes: Int32Array; distances: Float32Array } {
  const n = blocks.x.rows;
  const k = centroids.rows;
  const t = Math.min(CANDIDATES, k);
  const top = topCandidates(blocks, centroids, xNorms, t); // [n, t]
  const regret = new Float64Array(n);
  for (let r = 0; r < n; r++) {
    regret[r] = t > 1 ? (top.distances[r * t + 1] as number) - (top.distances[r * t] as number) : 0;
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => (regret[b] as number) - (regret[a] as number) || a - b);

  const codes = new Int32Array(n).fill(-1);
  const distances = new Float32Array(n);
  const load = new Int32Array(k);
  const deferred: number[] = [];
  for (const r of order) {
    let placed = false;
    for (let j = 0; j < t; j++) {
      const c = top.indices[r * t + j] as number;
      if ((load[c] as number) < capacity) {
        codes[r] = c;
        distances[r] = top.distances[r * t + j] as number;
        load[c] = (load[c] as number) + 1;
        placed = true;
        break;
      }
    }
    if (!placed) deferred.push(r);
  }
  if (deferred.length > 0) placeDeferred(blocks.x, centroids, capacity, deferred, codes, distances, load);
  return { codes, distances };
}

/** Places rows whose candidate centroids were all full at their nearest centroid with room. */
function placeDeferred(
  x: Matrix,
  centroids: Matrix,
  capacity: number,
  deferred: number[],
  codes: Int32Array,
  distances: Float32Array,
  load: Int32Array,
): void {
  const k = centroids.rows;
  const rest = takeRows(x, deferred); // [m, d]
  const restBlocks = new RowBlocks(rest, k);
  let ranked: { indices: Int32Array; distances: Float32Array }; // every centroid, nearest first: [m, k]
  try {
    ranked = topCandidates(restBlocks, centroids, rowSquaredNorms(rest), k);
  } finally {
    restBlocks.dispose();
  }
  for (let i = 0; i < deferred.length; i++) {
    const r = deferred[i] as number;
    // capacity * k >= rows guarantees room somewhere.
    for (let j = 0; j < k; j++) {
      const c = ranked.indices[i * k + j] as number;
      if ((load[c] as number) < capacity) {
        codes[r] = c;
        distances[r] = ranked.distances[i * k + j] as number;
        load[c] = (load[c] as number) + 1;
        break;
      }
    }
  }
}
