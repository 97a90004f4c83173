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

/** Codes, squared distances and per-centroid load of a capacity-bounded assignment in progress. */
interface Placement {
  readonly capacity: number;
  readonly codes: Int32Array; // [n], -1 until placed
  readonly distances: Float32Array; // [n]
  readonly load: Int32Array; // [k]
}

/** Centroids ranked per row, nearest first: indices and squared distances, each `[rows, width]`. */
interface Ranked {
  readonly indices: Int32Array;
  readonly distances: Float32Array;
}

/**
 * Places row `r` at the first centroid in row `at` of `ranked` (`width` per row) that still has
 * room; false when all of them are full.
 */
function placeAtFirstWithRoom(p: Placement, r: number, ranked: Ranked, at: number, width: number): boolean {
  for (let j = 0; j < width; j++) {
    const c = ranked.indices[at * width + j] as number;
    if ((p.load[c] as number) < p.capacity) {
      p.codes[r] = c;
      p.distances[r] = ranked.distances[at * width + j] as number;
      p.load[c] = (p.load[c] as number) + 1;
      return true;
    }
  }
  return false;
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

  const placement: Placement = { capacity, codes: new Int32Array(n).fill(-1), distances: new Float32Array(n), load: new Int32Array(k) };
  const deferred: number[] = [];
  for (const r of order) {
    if (!placeAtFirstWithRoom(placement, r, top, r, t)) deferred.push(r);
  }
  if (deferred.length > 0) placeDeferred(blocks.x, centroids, deferred, placement);
  return { codes: placement.codes, distances: placement.distances };
}

/** Places rows whose candidate centroids were all full at their nearest centroid with room. */
function placeDeferred(x: Matrix, centroids: Matrix, deferred: number[], placement: Placement): void {
  const k = centroids.rows;
  const rest = takeRows(x, deferred); // [m, d]
  const restBlocks = new RowBlocks(rest, k);
  let ranked: Ranked; // every centroid, nearest first: [m, k]
  try {
    ranked = topCandidates(restBlocks, centroids, rowSquaredNorms(rest), k);
  } finally {
    restBlocks.dispose();
  }
  // capacity * k >= rows guarantees room somewhere.
  for (let i = 0; i < deferred.length; i++) placeAtFirstWithRoom(placement, deferred[i] as number, ranked, i, k);
}
