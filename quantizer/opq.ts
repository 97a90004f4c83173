import { ValidationError } from '../errors';
import { npyFile, type ArtifactFileDraft } from '../infra/artifacts';
import { initTf } from '../infra/tf';
import { createLogger } from '../logging';
import type { Random } from '../random';
import type { QuantizerSettingsInput } from './config';
import { matmul, orthogonalityError, polarFactor, transposeMatmul } from './rotation';
import { checkMatrix, identity, sampleRowIndices, takeRows, type Matrix } from '../infra/matrix';
import { relativeSquaredError } from './metrics';
import { ProductQuantizer, fitPqCodebooks, trainingSettings } from './pq';
import { encodeInChunks, type Quantizer, type TrainedQuantizer } from './quantizer';

/**
 * Optimized product quantization (Ge et al. 2013, non-parametric OPQ): PQ of `x R` with an
 * orthogonal rotation `R` learned by alternating (1) PQ refinement on the rotated data and
 * (2) the orthogonal Procrustes update `R = polar(X^T Y)`, `Y` the PQ reconstruction, which
 * minimises `||X R - Y||_F` over orthogonal `R`. Because `R` is orthogonal, the reconstruction
 * error is the same in the rotated and the original space; `decode` returns original-space vectors.
 */

const log = createLogger('quantizer.opq');

export class OptimizedProductQuantizer implements Quantizer {
  readonly kind = 'opq' as const;

  /** `rotation` is `R` `[dims, dims]` (orthogonal); codes are `pq.encode(x R)`. */
  constructor(
    readonly rotation: Matrix,
    readonly pq: ProductQuantizer,
  ) {
    if (rotation.rows !== pq.dims || rotation.cols !== pq.dims) {
      throw new ValidationError(
        `OptimizedProductQuantizer: rotation must be [${pq.dims}, ${pq.dims}], received [${rotation.rows}, ${rotation.cols}]`,
      );
    }
  }

  get dims(): number {
    return this.pq.dims;
  }

  get levels(): number {
    return this.pq.levels;
  }

  get codesPerLevel(): number {
    return this.pq.codesPerLevel;
  }

  /** `x R`: `[rows, dims]`. */
  rotate(x: Matrix): Matrix {
    return matmul(x, this.rotation);
  }

  /**
   * PQ codes of `x R`. The rotation is a float32 matmul, so a row's code could differ between
   * batch sizes only if two centroids were equidistant within float32 rounding of `x R`.
   */
  encode(x: Matrix): Uint16Array {
    checkMatrix(x, 'opq encode input', this.dims);
    return encodeInChunks(x, this.levels, (chunk) => this.pq.encode(this.rotate(chunk)));
  }

  decode(codes: Uint16Array, rows: number): Matrix {
    return matmul(this.pq.decode(codes, rows), this.rotation, true); // [rows, d] R^T
  }

  toArtifactFiles(): ArtifactFileDraft[] {
    return [
      ...this.pq.toArtifactFiles(),
      npyFile('rotation.npy', this.rotation.data, [this.dims, this.dims], 'OPQ rotation R [dims, dims]; codes are PQ codes of x R'),
    ];
  }
}

/** Weight of the proximal term `delta R_prev` added to `X^T Y` (relative to its mean singular value). */
const PROXIMAL_WEIGHT = 1e-4;

/**
 * Trains OPQ on `x` `[n, dims]`: PQ at R = I (`opq.pqIterationsPerStep` Lloyd iterations per
 * book), then `opq.rotationIterations` alternations of the Procrustes update and
 * `opq.pqIterationsPerStep` warm-started Lloyd iterations per book, then a final refinement of
 * the books with the full k-means settings. Starting from the identity makes the first iterate
 * plain PQ; every later step descends the same objective `||X R - Y||^2`. More rotation
 * iterations keep lowering the error (faiss runs 50); the default trades some of that for time.
 *
 * The Procrustes target gets a tiny proximal term (`X^T Y + delta R_prev`) that keeps the polar
 * factor well defined when `X^T Y` is rank-deficient.
 */
export async function trainOpq(x: Matrix, settings: QuantizerSettingsInput, rng: Random): Promise<TrainedQuantizer> {
  await initTf();
  const s = trainingSettings('opq', x, settings);
  const started = Date.now();
  const { levels: L, codesPerLevel: K } = s;
  const d = x.cols;
  const maxTrain = K * s.kmeans.maxPointsPerCentroid;
  const train = x.rows > maxTrain ? takeRows(x, sampleRowIndices(x.rows, maxTrain, rng)) : x; // [n', d]
  const stepKMeans = { ...s.kmeans, iterations: s.opq.pqIterationsPerStep, tolerance: 0 };

  let rotation = identity(d);
  let rotated = train;
  let fit = fitPqCodebooks(rotated, L, K, stepKMeans, rng);
  for (let t = 0; t < s.opq.rotationIterations; t++) {
    const y = new ProductQuantizer(d, L, K, fit.codebooks).decode(fit.codes, rotated.rows); // [n', d]
    const relMse = relativeSquaredError(rotated, y);
    const target = transposeMatmul(train, y); // X^T Y [d, d]
    let norm = 0;
    for (let i = 0; i < target.data.length; i++) norm += (target.data[i] as number) ** 2;
    const delta = (PROXIMAL_WEIGHT * Math.sqrt(norm)) / Math.sqrt(d);
    for (let i = 0; i < target.data.length; i++) {
      target.data[i] = (target.data[i] as number) + delta * (rotation.data[i] as number);
    }
    const polar = polarFactor(target);
    if (polar.converged) rotation = polar.q;
    rotated = matmul(train, rotation);
    fit = fitPqCodebooks(rotated, L, K, stepKMeans, rng, fit.codebooks);
    log.debug(
      { iteration: t + 1, relMse, polarIterations: polar.iterations, orthogonality: polar.orthogonalityError },
      'opq rotation updated',
    );
  }
  fit = fitPqCodebooks(rotated, L, K, s.kmeans, rng, fit.codebooks);
  const quantizer = new OptimizedProductQuantizer(rotation, new ProductQuantizer(d, L, K, fit.codebooks));
  const codes = quantizer.encode(x);
  log.info(
    { rows: x.rows, dims: d, levels: L, codesPerLevel: K, ms: Date.now() - started, orthogonality: orthogonalityError(rotation) },
    'opq trained',
  );
  return { quantizer, codes };
}
