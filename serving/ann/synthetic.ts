import type { Random } from '../../random';
import { createMatrix, l2NormalizeRows, type Matrix } from '../../infra/matrix';

export interface ClusteredVectorsOptions {
  /** Number of cluster centres (default 64). */
  readonly clusters?: number;
  /** Standard deviation of each coordinate around its centre, relative to the centres' unit-variance coordinates (default 1: each vector's cosine to its centre is about 0.7; 2 approaches uniform random, the worst case for HNSW). */
  readonly spread?: number;
}

/**
 * `n` unit vectors `[n, dims]` drawn around `clusters` random centres (Gaussian centres, Gaussian
 * offsets, then L2-normalised): a stand-in for learned item embeddings, which are clustered, for
 * ANN tests and benchmarks. Uniform random vectors are the worst case for HNSW and unlike
 * embeddings. The same `rng` state gives the same vectors.
 */
export function clusteredUnitVectors(n: number, dims: number, rng: Random, options: ClusteredVectorsOptions = {}): Matrix {
  const clusters = options.clusters ?? 64;
  const spread = options.spread ?? 1;
  const centres = new Float32Array(clusters * dims);
  for (let i = 0; i < centres.length; i++) centres[i] = rng.normal();
  const out = createMatrix(n, dims);
  for (let i = 0; i < n; i++) {
    const c = rng.int(clusters);
    for (let j = 0; j < dims; j++) out.data[i * dims + j] = (centres[c * dims + j] as number) + spread * rng.normal();
  }
  return l2NormalizeRows(out);
}
