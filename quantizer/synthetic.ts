import { z } from 'zod';
import type { Random } from '../random';
import { configErrorFrom } from './config';
import type { Matrix } from '../infra/matrix';

/**
 * Synthetic item embeddings with planted structure, for tests and the benchmark: a mixture of
 * correlated Gaussian clusters, reproducible from the seed of the Random given.
 *
 * Model (all draws from `rng`, in this order):
 * 1. a global basis `B` `[globalRank, dims]`, `B[j, i] ~ N(0, 1 / (1 + j))` (a decaying spectrum
 *    shared by all clusters, so that dimensions are correlated across the whole set); let
 *    `H = sum_j 1 / (1 + j)`;
 * 2. per cluster c: weight `w_c ∝ (c + 1)^-sizeSkew`, scale `s_c = exp(scaleSpread * N(0, 1))`,
 *    mean `mu_c = meanScale * g_c B / sqrt(H)` (g_c ~ N(0, I)); a factor `W_c` `[clusterRank, dims]`
 *    whose even rows are `h B / sqrt(H)` (h ~ N(0, I): directions shared with other clusters) and
 *    odd rows fresh N(0, 1) directions, all divided by `sqrt(clusterRank)`; per-dimension noise
 *    `sigma_cj = noise * U(0.5, 1.5)`;
 * 3. per row: cluster c ~ w, then `x = mu_c + s_c (z W_c + sigma_c * e)` with z ~ N(0, I_rank),
 *    e ~ N(0, I_dims).
 *
 * Each dimension's variance is about `meanScale^2` between clusters plus `s_c^2 (1 + noise^2)`
 * within.
 */

export const SyntheticClustersSettings = z
  .strictObject({
    rows: z.number().int().min(1).default(25000).describe('Rows (items).'),
    dims: z.number().int().min(1).default(640).describe('Columns.'),
    clusters: z.number().int().min(1).default(100).describe('Gaussian components.'),
    clusterRank: z.number().int().min(1).default(16).describe('Rank of each component’s low-rank covariance factor.'),
    globalRank: z.number().int().min(1).default(64).describe('Rank of the shared basis that correlates dimensions.'),
    meanScale: z.number().min(0).default(1).describe('Spread of the component means.'),
    noise: z.number().min(0).default(0.5).describe('Scale of the diagonal (per-dimension) noise.'),
    sizeSkew: z.number().min(0).default(0.8).describe('Zipf exponent of the component sizes (0 = equal sizes).'),
    scaleSpread: z.number().min(0).default(0.35).describe('Log-normal spread of the component scales.'),
  })
  .describe('Mixture of correlated Gaussian clusters.');
export type SyntheticClustersSettings = z.infer<typeof SyntheticClustersSettings>;

/** A planted-structure matrix `[rows, dims]` and the component of every row. */
export function syntheticClusters(
  settings: z.input<typeof SyntheticClustersSettings>,
  rng: Random,
): { matrix: Matrix; labels: Int32Array; settings: SyntheticClustersSettings } {
  const parsed = SyntheticClustersSettings.safeParse(settings, { reportInput: true });
  if (!parsed.success) throw configErrorFrom(parsed.error, 'synthetic clusters settings');
  const s = parsed.data;
  const { dims: d, clusterRank: rank, globalRank } = s;

  const basis = new Float64Array(globalRank * d); // [globalRank, d]
  let h = 0;
  for (let j = 0; j < globalRank; j++) {
    const scale = 1 / Math.sqrt(1 + j);
    h += 1 / (1 + j);
    for (let i = 0; i < d; i++) basis[j * d + i] = rng.normal() * scale;
  }
  const fromBasis = (out: Float64Array, offset: number, weight: number): void => {
    for (let j = 0; j < globalRank; j++) {
      const g = (rng.normal() * weight) / Math.sqrt(h);
      for (let i = 0; i < d; i++) out[offset + i] = (out[offset + i] as number) + g * (basis[j * d + i] as number);
    }
  };

  const weights = new Float64Array(s.clusters);
  const scales = new Float64Array(s.clusters);
  const means = new Float64Array(s.clusters * d); // [clusters, d]
  const factors = new Float64Array(s.clusters * rank * d); // [clusters, rank, d]
  const sigmas = new Float64Array(s.clusters * d); // [clusters, d]
  let total = 0;
  for (let c = 0; c < s.clusters; c++) {
    weights[c] = Math.pow(c + 1, -s.sizeSkew);
    total += weights[c] as number;
    scales[c] = Math.exp(rng.normal() * s.scaleSpread);
    fromBasis(means, c * d, s.meanScale);
    for (let q = 0; q < rank; q++) {
      const o = (c * rank + q) * d;
      if (q % 2 === 0) fromBasis(factors, o, 1 / Math.sqrt(rank));
      else for (let i = 0; i < d; i++) factors[o + i] = rng.normal() / Math.sqrt(rank);
    }
    for (let i = 0; i < d; i++) sigmas[c * d + i] = s.noise * (0.5 + rng.next());
  }

  const cumulative = new Float64Array(s.clusters);
  let acc = 0;
  for (let c = 0; c < s.clusters; c++) {
    acc += (weights[c] as number) / total;
    cumulative[c] = acc;
  }

  const data = new Float32Array(s.rows * d);
  const labels = new Int32Array(s.rows);
  const z = new Float64Array(rank);
  const row = new Float64Array(d);
  for (let r = 0; r < s.rows; r++) {
    const u = rng.next();
    let c = 0;
    while (c < s.clusters - 1 && u >= (cumulative[c] as number)) c++;
    labels[r] = c;
    const sc = scales[c] as number;
    for (let q = 0; q < rank; q++) z[q] = rng.normal() * sc;
    for (let i = 0; i < d; i++) row[i] = means[c * d + i] as number;
    for (let q = 0; q < rank; q++) {
      const zq = z[q] as number;
      const o = (c * rank + q) * d;
      for (let i = 0; i < d; i++) row[i] = (row[i] as number) + zq * (factors[o + i] as number);
    }
    for (let i = 0; i < d; i++) data[r * d + i] = (row[i] as number) + sc * (sigmas[c * d + i] as number) * rng.normal();
  }
  return { matrix: { data, rows: s.rows, cols: d }, labels, settings: s };
}
