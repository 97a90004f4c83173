import { ValidationError } from '../errors';
import type { Random } from '../random';
import { orthonormalizeColumns, signOfLargestEntry, symmetricEigen } from './eigen';
import { createMatrix, gramOfRows, type Matrix } from '../infra/matrix';

/**
 * Sparse rows (CSR) and a randomized truncated SVD for them (Halko, Martinsson & Tropp 2011,
 * Algorithm 4.4 with the orthonormalisation done on the short side only), used by tfidf-lsa.
 */

/** Compressed sparse rows: row r's entries are `indices/values[indptr[r] .. indptr[r + 1])`. */
export interface CsrMatrix {
  readonly rows: number;
  readonly cols: number;
  readonly indptr: Int32Array;
  readonly indices: Int32Array;
  readonly values: Float64Array;
}

/** Builds a CSR matrix from per-row (column, value) lists. */
export function csrFromRows(rows: ReadonlyArray<ReadonlyArray<readonly [number, number]>>, cols: number): CsrMatrix {
  const nnz = rows.reduce((s, r) => s + r.length, 0);
  const indptr = new Int32Array(rows.length + 1);
  const indices = new Int32Array(nnz);
  const values = new Float64Array(nnz);
  let at = 0;
  rows.forEach((row, r) => {
    for (const [c, v] of row) {
      if (!(c >= 0 && c < cols)) throw new ValidationError(`csr row ${r}: column ${c} outside [0, ${cols})`);
      indices[at] = c;
      values[at] = v;
      at++;
    }
    indptr[r + 1] = at;
  });
  return { rows: rows.length, cols, indptr, indices, values };
}

/**
 * `a` `[R, C]` times a dense row-major `b` `[C, l]`: `[R, l]`; with `transposeA`, `a^T` times
 * `b` `[R, l]`: `[C, l]`. One pass over the nonzeros of `a` either way, in float64.
 */
export function csrTimesDense(a: CsrMatrix, b: Float64Array, l: number, transposeA = false): Float64Array {
  const out = new Float64Array((transposeA ? a.cols : a.rows) * l);
  for (let r = 0; r < a.rows; r++) {
    for (let p = a.indptr[r] as number; p < (a.indptr[r + 1] as number); p++) {
      const v = a.values[p] as number;
      const c = a.indices[p] as number;
      const o = (transposeA ? c : r) * l; // row of out
      const i = (transposeA ? r : c) * l; // row of b
      for (let j = 0; j < l; j++) out[o + j] = (out[o + j] as number) + v * (b[i + j] as number);
    }
  }
  return out;
}

export interface TruncatedSvd {
  /** Right singular vectors as rows, largest singular value first; sign: largest entry positive. [k, C] */
  readonly components: Matrix;
  /** [k] */
  readonly singularValues: Float64Array;
}

export interface RandomizedSvdOptions {
  /** Extra random directions beyond k (accuracy). Default 10. */
  readonly oversample?: number;
  /** Power iterations (accuracy when the spectrum decays slowly). Default 2. */
  readonly powerIterations?: number;
}

/**
 * Top-k singular vectors of a sparse a [R, C]. Directions with (near) zero singular value, when
 * the rank is below k, come out as zero rows.
 */
export function randomizedSvd(a: CsrMatrix, k: number, random: Random, options: RandomizedSvdOptions = {}): TruncatedSvd {
  if (!Number.isInteger(k) || k < 1 || k > Math.min(a.rows, a.cols)) {
    throw new ValidationError(`randomizedSvd: k must be an integer in [1, ${Math.min(a.rows, a.cols)}], got ${k}`);
  }
  const l = Math.min(k + (options.oversample ?? 10), a.rows, a.cols);
  const omega = new Float64Array(a.cols * l); // [C, l]
  for (let i = 0; i < omega.length; i++) omega[i] = random.normal();
  // Intermediate bases only need to be well conditioned (one pass); the final one orthonormal.
  const iterations = options.powerIterations ?? 2;
  let q = orthonormalizeColumns(csrTimesDense(a, omega, l), a.rows, l, iterations === 0 ? 2 : 1); // [R, l]
  for (let it = 0; it < iterations; it++) {
    q = orthonormalizeColumns(csrTimesDense(a, csrTimesDense(a, q, l, true), l), a.rows, l, it === iterations - 1 ? 2 : 1);
  }
  const bt = csrTimesDense(a, q, l, true); // B^T = A^T Q [C, l]
  const { values, vectors } = symmetricEigen(gramOfRows(bt, a.cols, l), l); // of B B^T = (B^T)^T B^T [l, l]

  const components = createMatrix(k, a.cols);
  const singularValues = new Float64Array(k);
  const top = Math.sqrt(Math.max(values[0] as number, 0));
  const column = new Float64Array(a.cols);
  for (let j = 0; j < k; j++) {
    const sigma = Math.sqrt(Math.max(values[j] as number, 0));
    singularValues[j] = sigma;
    if (!(sigma > top * 1e-10)) continue;
    // v_j = B^T u_j / sigma_j
    for (let c = 0; c < a.cols; c++) {
      let s = 0;
      for (let i = 0; i < l; i++) s += (bt[c * l + i] as number) * (vectors[j * l + i] as number);
      column[c] = s / sigma;
    }
    const sign = signOfLargestEntry(column);
    for (let c = 0; c < a.cols; c++) components.data[j * a.cols + c] = sign * (column[c] as number);
  }
  return { components, singularValues };
}
