import { ArtifactError, ConfigError, ValidationError } from '../errors';
import { createLogger } from '../logging';
import { symmetricEigen } from './eigen';
import { createMatrix, gramMatrix, type Matrix } from '../infra/matrix';

/**
 * PCA with optional whitening, scikit-learn semantics (`PCA(n_components=k, whiten=True)`):
 * center on the training mean, project on the top-k eigenvectors of the covariance (ddof = 1),
 * and when whitening divide each output column by the square root of its eigenvalue, so the
 * training output has unit variance per column. Fitted once per rebuild and stored; new rows are
 * transformed with the stored mean, components and scales.
 *
 * Component signs are fixed (largest-magnitude entry positive), so refits on the same data give
 * the same output. Components whose variance is below 1e-10 of the largest (fewer training rows
 * than components, duplicated rows) get scale 0 when whitening instead of blowing up noise.
 */

const log = createLogger('features.pca');

export interface PcaModel {
  /** Input row length D. */
  readonly inputDims: number;
  /** Output row length K. */
  readonly dims: number;
  readonly whiten: boolean;
  /** Training mean. [D] */
  readonly mean: Float32Array;
  /** Principal axes as rows, largest variance first. [K, D] */
  readonly components: Matrix;
  /** Variance along each component (covariance eigenvalue, ddof = 1). [K] */
  readonly variances: Float32Array;
  /** Factor applied to each output column: 1/sqrt(variance) when whitening (0 if ~0), else 1. [K] */
  readonly scales: Float32Array;
  /** Sum of all covariance eigenvalues (for the explained-variance ratio). */
  readonly totalVariance: number;
}

export interface PcaOptions {
  readonly whiten?: boolean;
}

/** Fits PCA on the rows of x [N, D] keeping k components. Needs N >= 2 and k <= D. */
export function fitPca(x: Matrix, k: number, options: PcaOptions = {}): PcaModel {
  const whiten = options.whiten ?? true;
  const { rows: n, cols: d } = x;
  if (!Number.isInteger(k) || k < 1) throw new ConfigError(`pca dims must be a positive integer, got ${k}`);
  if (k > d) throw new ConfigError(`pca dims ${k} exceed the encoder's ${d} dimensions; lower pcaDims or use a wider encoder`);
  if (n < 2) throw new ValidationError(`PCA needs at least 2 rows to fit, got ${n}`);

  const mean = new Float64Array(d);
  for (let r = 0; r < n; r++) for (let j = 0; j < d; j++) mean[j] = (mean[j] as number) + (x.data[r * d + j] as number);
  for (let j = 0; j < d; j++) mean[j] = (mean[j] as number) / n;
  const cov = gramMatrix(x, mean); // [D, D]
  for (let i = 0; i < cov.length; i++) cov[i] = (cov[i] as number) / (n - 1);

  const { values, vectors } = symmetricEigen(cov, d);
  const components = createMatrix(k, d, Float32Array.from(vectors.subarray(0, k * d)));
  const variances = new Float32Array(k);
  const scales = new Float32Array(k);
  const top = Math.max(values[0] as number, 0);
  let dropped = 0;
  for (let j = 0; j < k; j++) {
    const v = Math.max(values[j] as number, 0);
    variances[j] = v;
    if (!whiten) scales[j] = 1;
    else if (v > top * 1e-10 && v > 0) scales[j] = 1 / Math.sqrt(v);
    else dropped++;
  }
  if (dropped > 0) {
    log.warn({ rows: n, inputDims: d, dims: k, dropped }, 'pca: components with ~zero variance get scale 0 (too few distinct rows)');
  }
  let totalVariance = 0;
  for (const v of values) totalVariance += Math.max(v, 0);
  return { inputDims: d, dims: k, whiten, mean: Float32Array.from(mean), components, variances, scales, totalVariance };
}

/** Transforms rows with a fitted model: x [N, D] -> [N, K]. */
export function applyPca(model: PcaModel, x: Matrix): Matrix {
  if (x.cols !== model.inputDims) {
    throw new ValidationError(`applyPca: rows have ${x.cols} values, the PCA was fitted on ${model.inputDims}`);
  }
  const { inputDims: d, dims: k, mean, components, scales } = model;
  const out = createMatrix(x.rows, k);
  const centered = new Float64Array(d);
  for (let r = 0; r < x.rows; r++) {
    for (let j = 0; j < d; j++) centered[j] = (x.data[r * d + j] as number) - (mean[j] as number);
    for (let c = 0; c < k; c++) {
      const scale = scales[c] as number;
      if (scale === 0) continue;
      let dot = 0;
      const base = c * d;
      for (let j = 0; j < d; j++) dot += (centered[j] as number) * (components.data[base + j] as number);
      out.data[r * k + c] = dot * scale;
    }
  }
  return out;
}

/** Fraction of the total variance kept by the model's components. */
export function explainedVarianceRatio(model: PcaModel): number {
  let kept = 0;
  for (const v of model.variances) kept += v;
  return model.totalVariance > 0 ? kept / model.totalVariance : 0;
}

/** The arrays that store a model: mean [1, D], components [K, D], variances [1, K], scales [1, K]. */
export function pcaArrays(model: PcaModel): { mean: Matrix; components: Matrix; variances: Matrix; scales: Matrix } {
  return {
    mean: createMatrix(1, model.inputDims, model.mean),
    components: model.components,
    variances: createMatrix(1, model.dims, model.variances),
    scales: createMatrix(1, model.dims, model.scales),
  };
}

/** Rebuilds a model from stored arrays, checking that their shapes agree (`where` names the source). */
export function pcaFromArrays(
  arrays: { mean: Matrix; components: Matrix; variances: Matrix; scales: Matrix },
  meta: { whiten: boolean; totalVariance: number },
  where: string,
): PcaModel {
  const { mean, components, variances, scales } = arrays;
  const d = components.cols;
  const k = components.rows;
  const bad = (what: string, got: Matrix, expected: string) =>
    new ArtifactError(`${where}: PCA ${what} has shape [${got.rows}, ${got.cols}], expected ${expected}`, { context: { path: where } });
  if (mean.rows * mean.cols !== d) throw bad('mean', mean, `${d} values (components are [${k}, ${d}])`);
  if (variances.rows * variances.cols !== k) throw bad('variances', variances, `${k} values`);
  if (scales.rows * scales.cols !== k) throw bad('scales', scales, `${k} values`);
  return {
    inputDims: d,
    dims: k,
    whiten: meta.whiten,
    mean: mean.data,
    components,
    variances: variances.data,
    scales: scales.data,
    totalVariance: meta.totalVariance,
  };
}
