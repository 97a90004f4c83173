import { ValidationError } from '../errors';
import { gramOfRows } from '../infra/matrix';

/**
 * The symmetric eigensolver of features/ and what is built on it, in float64: the
 * eigendecomposition (Householder tridiagonalisation + implicit QL, the EISPACK tred2/tql2
 * algorithm as in JAMA; O(n^3)), the sign rule that makes eigen- and singular vectors
 * reproducible, and an orthonormaliser for thin matrices. PCA, SIF's common-component removal
 * and the randomized SVD of tfidf-lsa use it; the Gram matrices they decompose come from
 * infra/matrix.ts.
 */

export interface SymmetricEigen {
  /** Eigenvalues, largest first. [n] */
  readonly values: Float64Array;
  /** Eigenvectors as rows, unit length, in the order of `values`: row j at [j*n, (j+1)*n). [n, n] */
  readonly vectors: Float64Array;
  readonly n: number;
}

/**
 * Eigendecomposition of a symmetric matrix `a` [n, n] (row-major; only symmetry is assumed, the
 * input is not modified). Each eigenvector's sign is fixed so that its largest-magnitude entry is
 * positive, which makes results reproducible across runs.
 */
export function symmetricEigen(a: Float64Array, n: number): SymmetricEigen {
  if (a.length !== n * n) throw new ValidationError(`symmetricEigen: expected ${n * n} values for [${n}, ${n}], got ${a.length}`);
  for (let i = 0; i < a.length; i++) {
    if (!Number.isFinite(a[i] as number)) {
      throw new ValidationError(`symmetricEigen: entry [${Math.floor(i / n)}, ${i % n}] is ${a[i]} (not finite)`);
    }
  }
  if (n === 0) return { values: new Float64Array(0), vectors: new Float64Array(0), n };
  // w holds JAMA's V transposed, w[c * n + r] = V[r][c], so that the inner loops run over
  // contiguous memory; at the end row j of w is eigenvector j.
  const w = Float64Array.from(a); // a is symmetric, so its transpose is itself
  const d = new Float64Array(n);
  const e = new Float64Array(n);
  tridiagonalize(w, d, e, n);
  diagonalize(w, d, e, n);

  const order = Array.from({ length: n }, (_, i) => i).sort((x, y) => (d[y] as number) - (d[x] as number));
  const values = new Float64Array(n);
  const vectors = new Float64Array(n * n);
  order.forEach((col, j) => {
    values[j] = d[col] as number;
    const row = w.subarray(col * n, (col + 1) * n);
    const sign = signOfLargestEntry(row);
    for (let k = 0; k < n; k++) vectors[j * n + k] = sign * (row[k] as number);
  });
  return { values, vectors, n };
}

/**
 * The sign rule of eigen- and singular vectors: +1 or -1 so that the vector's largest-magnitude
 * entry `v` `[n]` becomes positive (entries within 1e-12 of the largest so far do not take over,
 * so ties go to the first). Makes decompositions reproducible across runs.
 */
export function signOfLargestEntry(v: ArrayLike<number>): 1 | -1 {
  let maxAbs = 0;
  let sign: 1 | -1 = 1;
  for (let k = 0; k < v.length; k++) {
    const x = v[k] as number;
    if (Math.abs(x) > maxAbs + 1e-12) {
      maxAbs = Math.abs(x);
      sign = x < 0 ? -1 : 1;
    }
  }
  return sign;
}

/** Householder reduction to tridiagonal form (EISPACK tred2): d = diagonal, e = off-diagonal. */
function tridiagonalize(w: Float64Array, d: Float64Array, e: Float64Array, n: number): void {
  for (let j = 0; j < n; j++) d[j] = w[j * n + n - 1] as number;
  for (let i = n - 1; i > 0; i--) {
    let scale = 0;
    let h = 0;
    for (let k = 0; k < i; k++) scale += Math.abs(d[k] as number);
    if (scale === 0) {
      e[i] = d[i - 1] as number;
      for (let j = 0; j < i; j++) {
        d[j] = w[j * n + i - 1] as number;
        w[j * n + i] = 0;
        w[i * n + j] = 0;
      }
    } else {
      for (let k = 0; k < i; k++) {
        d[k] = (d[k] as number) / scale;
        h += (d[k] as number) * (d[k] as number);
      }
      let f = d[i - 1] as number;
      let g = Math.sqrt(h);
      if (f > 0) g = -g;
      e[i] = scale * g;
      h -= f * g;
      d[i - 1] = f - g;
      for (let j = 0; j < i; j++) e[j] = 0;
      for (let j = 0; j < i; j++) {
        f = d[j] as number;
        w[i * n + j] = f;
        const wj = j * n;
        g = (e[j] as number) + (w[wj + j] as number) * f;
        for (let k = j + 1; k <= i - 1; k++) {
          g += (w[wj + k] as number) * (d[k] as number);
          e[k] = (e[k] as number) + (w[wj + k] as number) * f;
        }
        e[j] = g;
      }
      f = 0;
      for (let j = 0; j < i; j++) {
        e[j] = (e[j] as number) / h;
        f += (e[j] as number) * (d[j] as number);
      }
      const hh = f / (h + h);
      for (let j = 0; j < i; j++) e[j] = (e[j] as number) - hh * (d[j] as number);
      for (let j = 0; j < i; j++) {
        f = d[j] as number;
        g = e[j] as number;
        const wj = j * n;
        for (let k = j; k <= i - 1; k++) w[wj + k] = (w[wj + k] as number) - (f * (e[k] as number) + g * (d[k] as number));
        d[j] = w[wj + i - 1] as number;
        w[wj + i] = 0;
      }
    }
    d[i] = h;
  }
  // Accumulate the transformations.
  for (let i = 0; i < n - 1; i++) {
    w[i * n + n - 1] = w[i * n + i] as number;
    w[i * n + i] = 1;
    const h = d[i + 1] as number;
    const wi1 = (i + 1) * n;
    if (h !== 0) {
      for (let k = 0; k <= i; k++) d[k] = (w[wi1 + k] as number) / h;
      for (let j = 0; j <= i; j++) {
        const wj = j * n;
        let g = 0;
        for (let k = 0; k <= i; k++) g += (w[wi1 + k] as number) * (w[wj + k] as number);
        for (let k = 0; k <= i; k++) w[wj + k] = (w[wj + k] as number) - g * (d[k] as number);
      }
    }
    for (let k = 0; k <= i; k++) w[wi1 + k] = 0;
  }
  for (let j = 0; j < n; j++) {
    d[j] = w[j * n + n - 1] as number;
    w[j * n + n - 1] = 0;
  }
  w[(n - 1) * n + n - 1] = 1;
  e[0] = 0;
}

/** Implicit QL iterations on the tridiagonal matrix (EISPACK tql2); eigenvalues end in d. */
function diagonalize(w: Float64Array, d: Float64Array, e: Float64Array, n: number): void {
  for (let i = 1; i < n; i++) e[i - 1] = e[i] as number;
  e[n - 1] = 0;
  let f = 0;
  let tst1 = 0;
  const eps = 2 ** -52;
  for (let l = 0; l < n; l++) {
    tst1 = Math.max(tst1, Math.abs(d[l] as number) + Math.abs(e[l] as number));
    let m = l;
    while (m < n) {
      if (Math.abs(e[m] as number) <= eps * tst1) break;
      m++;
    }
    if (m > l) {
      let iterations = 0;
      do {
        if (++iterations > 100) throw new ValidationError(`symmetricEigen: no convergence for eigenvalue ${l} of ${n}`);
        let g = d[l] as number;
        let p = ((d[l + 1] as number) - g) / (2 * (e[l] as number));
        let r = Math.hypot(p, 1);
        if (p < 0) r = -r;
        d[l] = (e[l] as number) / (p + r);
        d[l + 1] = (e[l] as number) * (p + r);
        const dl1 = d[l + 1] as number;
        let h = g - (d[l] as number);
        for (let i = l + 2; i < n; i++) d[i] = (d[i] as number) - h;
        f += h;
        p = d[m] as number;
        let c = 1;
        let c2 = c;
        let c3 = c;
        const el1 = e[l + 1] as number;
        let s = 0;
        let s2 = 0;
        for (let i = m - 1; i >= l; i--) {
          c3 = c2;
          c2 = c;
          s2 = s;
          g = c * (e[i] as number);
          h = c * p;
          r = Math.hypot(p, e[i] as number);
          e[i + 1] = s * r;
          s = (e[i] as number) / r;
          c = p / r;
          p = c * (d[i] as number) - s * g;
          d[i + 1] = h + s * (c * g + s * (d[i] as number));
          const a = i * n;
          const b = a + n;
          for (let k = 0; k < n; k++) {
            h = w[b + k] as number;
            w[b + k] = s * (w[a + k] as number) + c * h;
            w[a + k] = c * (w[a + k] as number) - s * h;
          }
        }
        p = (-s * s2 * c3 * el1 * (e[l] as number)) / dl1;
        e[l] = s * p;
        d[l] = c * p;
      } while (Math.abs(e[l] as number) > eps * tst1);
    }
    d[l] = (d[l] as number) + f;
    e[l] = 0;
  }
}

/** row <- row T for every row of y [rows, cols], with T [cols, cols] (k unrolled by four). */
function multiplyRowsInPlace(y: Float64Array, rows: number, cols: number, t: Float64Array): void {
  const row = new Float64Array(cols);
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    row.fill(0);
    let k = 0;
    for (; k + 4 <= cols; k += 4) {
      const y0 = y[base + k] as number;
      const y1 = y[base + k + 1] as number;
      const y2 = y[base + k + 2] as number;
      const y3 = y[base + k + 3] as number;
      const t0 = k * cols;
      const t1 = t0 + cols;
      const t2 = t1 + cols;
      const t3 = t2 + cols;
      for (let j = 0; j < cols; j++) {
        row[j] =
          (row[j] as number) +
          y0 * (t[t0 + j] as number) +
          y1 * (t[t1 + j] as number) +
          y2 * (t[t2 + j] as number) +
          y3 * (t[t3 + j] as number);
      }
    }
    for (; k < cols; k++) {
      const yk = y[base + k] as number;
      const tk = k * cols;
      for (let j = 0; j < cols; j++) row[j] = (row[j] as number) + yk * (t[tk + j] as number);
    }
    y.set(row, base);
  }
}

/**
 * Orthonormalises the columns of a thin matrix y [rows, cols] (row-major, float64) in place:
 * with y^T y = U Lambda U^T, y <- y U Lambda^-1/2 (the columns then span the same space and are
 * orthonormal), `passes` times (default 2: the second pass removes the rounding left by the
 * first). Directions with (near) zero energy, below 1e-14 of the largest, become zero columns.
 * Returns `y`.
 */
export function orthonormalizeColumns(y: Float64Array, rows: number, cols: number, passes = 2): Float64Array {
  for (let pass = 0; pass < passes; pass++) {
    const { values, vectors } = symmetricEigen(gramOfRows(y, rows, cols), cols); // y^T y [cols, cols]
    const top = values[0] ?? 0;
    // t = U Lambda^-1/2 [cols, cols]: column j = eigenvector j / sqrt(lambda_j).
    const t = new Float64Array(cols * cols);
    for (let j = 0; j < cols; j++) {
      const lambda = values[j] as number;
      if (!(lambda > top * 1e-14)) continue;
      const inv = 1 / Math.sqrt(lambda);
      for (let k = 0; k < cols; k++) t[k * cols + j] = (vectors[j * cols + k] as number) * inv;
    }
    multiplyRowsInPlace(y, rows, cols, t);
  }
  return y;
}
