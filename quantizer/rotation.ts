import { tf } from '../infra/tf';
import { createLogger } from '../logging';
import type { Matrix } from '../infra/matrix';

/**
 * The algebra of OPQ's rotation, on the TF.js backend (float32 matmuls): products with the
 * rotation in row blocks, `X^T Y` for the Procrustes target, and the orthogonal polar factor by
 * Newton–Schulz iteration. Only OPQ needs these, and they are the only matrix helpers that need
 * TF.js, so they live here rather than in infra/matrix.ts (which stays plain JS; its float64
 * `gramMatrix` is the exact counterpart of `transposeMatmul(x, x)` for small matrices).
 */

const log = createLogger('quantizer.rotation');

/** Rows of the left operand per matmul call, to bound memory. */
const MATMUL_BLOCK_ROWS = 16384;

/**
 * `a b` (or `a b^T` with `transposeB`) in float32 on the backend: `a` `[n, k]` times `b` `[k, m]`
 * (or `[m, k]`) -> `[n, m]`, in blocks of rows of `a`.
 */
export function matmul(a: Matrix, b: Matrix, transposeB = false): Matrix {
  const outCols = transposeB ? b.rows : b.cols;
  const out = new Float32Array(a.rows * outCols);
  const bt = tf.tensor2d(b.data, [b.rows, b.cols]);
  try {
    for (let start = 0; start < a.rows; start += MATMUL_BLOCK_ROWS) {
      const end = Math.min(a.rows, start + MATMUL_BLOCK_ROWS);
      const prod = tf.tidy(() => {
        const rows = tf.tensor2d(a.data.subarray(start * a.cols, end * a.cols), [end - start, a.cols]);
        return tf.matMul(rows, bt, false, transposeB);
      });
      out.set(prod.dataSync() as Float32Array, start * outCols);
      prod.dispose();
    }
  } finally {
    bt.dispose();
  }
  return { data: out, rows: a.rows, cols: outCols };
}

/** `a^T b` in float32 on the backend: `a` `[n, p]`, `b` `[n, q]` -> `[p, q]`, summed over blocks of rows. */
export function transposeMatmul(a: Matrix, b: Matrix): Matrix {
  let acc = tf.zeros([a.cols, b.cols]) as tf.Tensor2D;
  for (let start = 0; start < a.rows; start += MATMUL_BLOCK_ROWS) {
    const end = Math.min(a.rows, start + MATMUL_BLOCK_ROWS);
    const next = tf.tidy(() =>
      tf.add(
        acc,
        tf.matMul(
          tf.tensor2d(a.data.subarray(start * a.cols, end * a.cols), [end - start, a.cols]),
          tf.tensor2d(b.data.subarray(start * b.cols, end * b.cols), [end - start, b.cols]),
          true,
          false,
        ),
      ),
    ) as tf.Tensor2D;
    acc.dispose();
    acc = next;
  }
  const data = acc.dataSync() as Float32Array;
  acc.dispose();
  return { data: Float32Array.from(data), rows: a.cols, cols: b.cols };
}

/** `||q^T q - I||_max` of a square `q` `[d, d]` (0 for an orthogonal one). */
export function orthogonalityError(q: Matrix): number {
  const g = tf.tidy(() => {
    const t = tf.tensor2d(q.data, [q.rows, q.cols]);
    return tf.max(tf.abs(tf.sub(tf.matMul(t, t, true, false), tf.eye(q.cols))));
  });
  const v = (g.dataSync() as Float32Array)[0] as number;
  g.dispose();
  return v;
}

export interface PolarResult {
  /** The orthogonal factor `U V^T` of `m = U S V^T`, `[d, d]`. */
  readonly q: Matrix;
  readonly iterations: number;
  /** `||q^T q - I||_max` at the end. */
  readonly orthogonalityError: number;
  readonly converged: boolean;
}

/**
 * Orthogonal polar factor of a square `m` `[d, d]` by the Newton–Schulz iteration
 * `Z <- Z (3 I - Z^T Z) / 2`, started from `m / ||m||_F` (spectral norm <= 1 < sqrt(3), so it
 * converges for every non-singular `m`; small singular values grow by 1.5x per step until they
 * approach 1, then convergence is quadratic). Only matmuls, so it runs on any TF.js backend.
 */
export function polarFactor(m: Matrix, maxIterations = 100, tolerance = 2e-6): PolarResult {
  const d = m.rows;
  let z = tf.tidy(() => {
    const t = tf.tensor2d(m.data, [d, d]);
    return tf.div(t, tf.norm(t)) as tf.Tensor2D;
  });
  const eye = tf.eye(d);
  let iterations = 0;
  let error = Infinity;
  try {
    while (iterations < maxIterations) {
      const [next, err] = tf.tidy(() => {
        const gram = tf.matMul(z, z, true, false); // [d, d]
        const e = tf.max(tf.abs(tf.sub(gram, eye)));
        return [tf.mul(tf.matMul(z, tf.sub(tf.mul(eye, 3), gram)), 0.5) as tf.Tensor2D, e];
      });
      z.dispose();
      z = next!;
      iterations++;
      error = (err!.dataSync() as Float32Array)[0] as number;
      err!.dispose();
      // `error` is that of the previous iterate; the step just taken squares it (roughly).
      if (error * error < tolerance) break;
    }
    const data = Float32Array.from(z.dataSync() as Float32Array);
    const q = { data, rows: d, cols: d };
    const finalError = orthogonalityError(q);
    const converged = finalError < 1e-4;
    if (!converged) log.warn({ iterations, finalError }, 'Newton–Schulz polar factor did not converge');
    return { q, iterations, orthogonalityError: finalError, converged };
  } finally {
    z.dispose();
    eye.dispose();
  }
}
