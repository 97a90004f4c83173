import { ValidationError, describeValue } from '../errors';

/**
 * The one home of the dense matrix and its numeric helpers, for features/, quantizer/ and
 * trainer/. Plain JS (float32 storage, float64 accumulation), no TF.js: what runs on the TF.js
 * backend lives with the one stage that needs it (OPQ's rotation in quantizer/rotation.ts), and
 * so does the symmetric eigensolver (features/eigen.ts: PCA, SIF, tf-idf LSA).
 *
 * Shapes are written `[rows, cols]`.
 */

/**
 * A dense row-major float32 matrix `[rows, cols]`: element (r, c) is `data[r * cols + c]`.
 * Text encodings `[N, D]`, PCA outputs, codebooks, residuals and rotations are all this type.
 */
export interface Matrix {
  readonly data: Float32Array;
  readonly rows: number;
  readonly cols: number;
}

/**
 * The matrix constructor: a `[rows, cols]` matrix, zero-filled, or wrapping `data` (no copy)
 * after checking that it is a Float32Array of `rows * cols` values.
 */
/** Whether `x` is a Float32Array, from this realm or another (a native addon's, a test sandbox's). */
export function isFloat32Array(x: unknown): x is Float32Array {
  return x instanceof Float32Array || Object.prototype.toString.call(x) === '[object Float32Array]';
}

export function createMatrix(rows: number, cols: number, data?: Float32Array): Matrix {
  if (!Number.isInteger(rows) || rows < 0 || !Number.isInteger(cols) || cols < 0) {
    throw new ValidationError(`createMatrix: rows and cols must be non-negative integers, received [${rows}, ${cols}]`);
  }
  if (data !== undefined && !isFloat32Array(data)) {
    throw new ValidationError(`createMatrix: data must be a Float32Array, received ${describeValue(data)}`);
  }
  const values = data ?? new Float32Array(rows * cols);
  if (values.length !== rows * cols) {
    throw new ValidationError(
      `createMatrix: [${rows}, ${cols}] needs rows * cols = ${rows * cols} values, received ${values.length}`,
    );
  }
  return { data: values, rows, cols };
}

/** The identity `[d, d]`. */
export function identity(d: number): Matrix {
  const out = createMatrix(d, d);
  for (let i = 0; i < d; i++) out.data[i * d + i] = 1;
  return out;
}

/**
 * Checks that `x` is a well-formed matrix with finite values (and `expectedCols` columns when
 * given) before it enters a computation; `name` names the argument in the message.
 */
export function checkMatrix(x: Matrix, name: string, expectedCols?: number): void {
  checkMatrixShape(x, name, expectedCols);
  checkFiniteRows(x, name, 0, x.rows);
}

/** {@link checkMatrix} without the scan of the values: the type, the element count and the columns. */
export function checkMatrixShape(x: Matrix, name: string, expectedCols?: number): void {
  if (x === null || typeof x !== 'object' || !isFloat32Array(x.data)) {
    throw new ValidationError(`${name} must be a Matrix {data: Float32Array, rows, cols}, received ${describeValue(x)}`);
  }
  if (x.data.length !== x.rows * x.cols) {
    throw new ValidationError(`${name}: data has ${x.data.length} elements, expected rows * cols = ${x.rows * x.cols}`);
  }
  if (expectedCols !== undefined && x.cols !== expectedCols) {
    throw new ValidationError(`${name} must have ${expectedCols} columns, received ${x.cols}`);
  }
}

/** Rows `[fromRow, toRow)` of a matrix of checked shape hold finite numbers (else the message of {@link checkMatrix}). */
export function checkFiniteRows(x: Matrix, name: string, fromRow: number, toRow: number): void {
  const end = toRow * x.cols;
  for (let i = fromRow * x.cols; i < end; i++) {
    const v = x.data[i] as number;
    if (!Number.isFinite(v)) {
      const row = Math.floor(i / Math.max(1, x.cols));
      throw new ValidationError(`${name} must hold finite numbers, found ${v} at row ${row}, column ${i - row * x.cols}`);
    }
  }
}

/** Row `i` of `m` `[rows, cols]` as a view (no copy): `[cols]`. */
export function rowOf(m: Matrix, i: number): Float32Array {
  if (!Number.isInteger(i) || i < 0 || i >= m.rows) {
    throw new ValidationError(`row index must be an integer in [0, ${m.rows}), got ${i}`);
  }
  return m.data.subarray(i * m.cols, (i + 1) * m.cols);
}

/** Copies the given rows of `x` `[rows, cols]`, in the order given: `[indices.length, cols]`. */
export function takeRows(x: Matrix, indices: ArrayLike<number>): Matrix {
  const out = new Float32Array(indices.length * x.cols);
  for (let i = 0; i < indices.length; i++) {
    const r = indices[i] as number;
    out.set(x.data.subarray(r * x.cols, (r + 1) * x.cols), i * x.cols);
  }
  return { data: out, rows: indices.length, cols: x.cols };
}

/** Copies columns `[start, end)` of `x` `[rows, cols]`: `[rows, end - start]`. */
export function sliceCols(x: Matrix, start: number, end: number): Matrix {
  const width = end - start;
  const out = new Float32Array(x.rows * width);
  for (let r = 0; r < x.rows; r++) {
    const from = r * x.cols + start;
    out.set(x.data.subarray(from, from + width), r * width);
  }
  return { data: out, rows: x.rows, cols: width };
}

/**
 * `min(count, rows)` distinct row indices out of `[0, rows)`, drawn uniformly with `rng` (partial
 * Fisher-Yates) and returned in ascending order: `[min(count, rows)]`.
 */
export function sampleRowIndices(rows: number, count: number, rng: { int(n: number): number }): Int32Array {
  const pool = new Int32Array(rows);
  for (let i = 0; i < rows; i++) pool[i] = i;
  const take = Math.min(count, rows);
  for (let i = 0; i < take; i++) {
    const j = i + rng.int(rows - i);
    const t = pool[i] as number;
    pool[i] = pool[j] as number;
    pool[j] = t;
  }
  return pool.subarray(0, take).sort();
}

/** Squared L2 norm of every row of `x` `[rows, cols]`, summed in float64: `[rows]`. */
export function rowSquaredNorms(x: Matrix): Float64Array {
  const out = new Float64Array(x.rows);
  const { data, cols } = x;
  for (let r = 0; r < x.rows; r++) {
    let s = 0;
    const o = r * cols;
    for (let c = 0; c < cols; c++) {
      const v = data[o + c] as number;
      s += v * v;
    }
    out[r] = s;
  }
  return out;
}

/** Scales every row of `m` `[rows, cols]` to unit L2 norm in place; all-zero rows stay zero. Returns `m`. */
export function l2NormalizeRows(m: Matrix): Matrix {
  const { data, cols } = m;
  const norms = rowSquaredNorms(m); // [rows]
  for (let i = 0; i < m.rows; i++) {
    const sq = norms[i] as number;
    if (sq > 0) {
      const inv = 1 / Math.sqrt(sq);
      for (let j = i * cols; j < (i + 1) * cols; j++) data[j] = (data[j] as number) * inv;
    }
  }
  return m;
}

/** Cosine similarity of two vectors of the same length `[n]` (0 when either is all zeros). */
export function cosineSimilarity(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new ValidationError(`cosineSimilarity: lengths differ (${a.length} vs ${b.length})`);
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] as number;
    const y = b[i] as number;
    dot += x * y;
    na += x * x;
    nb += y * y;
  }
  return na > 0 && nb > 0 ? dot / Math.sqrt(na * nb) : 0;
}

/**
 * `g += B^T B` for a block `B` of `count` (1..4) rows stored at `block` `[count, cols]`; `g` is
 * `[cols, cols]`, upper triangle only. Four rows per sweep over `g` (one pass over `g` instead of
 * four); both forms add the rows' products to each entry in row order, so they agree exactly.
 */
function accumulateGram(g: Float64Array, block: Float64Array, count: number, cols: number): void {
  if (count === 4) {
    const b1 = cols;
    const b2 = 2 * cols;
    const b3 = 3 * cols;
    for (let i = 0; i < cols; i++) {
      const a0 = block[i] as number;
      const a1 = block[b1 + i] as number;
      const a2 = block[b2 + i] as number;
      const a3 = block[b3 + i] as number;
      const gi = i * cols;
      for (let j = i; j < cols; j++) {
        g[gi + j] =
          (g[gi + j] as number) +
          a0 * (block[j] as number) +
          a1 * (block[b1 + j] as number) +
          a2 * (block[b2 + j] as number) +
          a3 * (block[b3 + j] as number);
      }
    }
    return;
  }
  for (let r = 0; r < count; r++) {
    const base = r * cols;
    for (let i = 0; i < cols; i++) {
      const a = block[base + i] as number;
      if (a === 0) continue;
      const gi = i * cols;
      for (let j = i; j < cols; j++) g[gi + j] = (g[gi + j] as number) + a * (block[base + j] as number);
    }
  }
}

/** Copies the upper triangle of `g` `[n, n]` into the lower one. */
function mirrorUpper(g: Float64Array, n: number): void {
  for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) g[i * n + j] = g[j * n + i] as number;
}

/**
 * Gram matrix `X^T X` in float64, optionally after subtracting `center` `[cols]` from every row
 * (PCA's covariance). `x` `[rows, cols]` -> `[cols, cols]` (row-major, symmetric).
 */
export function gramMatrix(x: Matrix, center?: Float64Array): Float64Array {
  const { data, rows, cols } = x;
  const g = new Float64Array(cols * cols);
  const block = new Float64Array(4 * cols);
  for (let r = 0; r < rows; r += 4) {
    const count = Math.min(4, rows - r);
    for (let b = 0; b < count; b++) {
      const src = (r + b) * cols;
      for (let j = 0; j < cols; j++) block[b * cols + j] = (data[src + j] as number) - (center ? (center[j] as number) : 0);
    }
    accumulateGram(g, block, count, cols);
  }
  mirrorUpper(g, cols);
  return g;
}

/**
 * Gram matrix `Y^T Y` of a float64 row-major `y` `[rows, cols]` (the thin bases of the
 * randomized SVD): `[cols, cols]` (row-major, symmetric). Same accumulation as {@link gramMatrix}.
 */
export function gramOfRows(y: Float64Array, rows: number, cols: number): Float64Array {
  if (y.length !== rows * cols) {
    throw new ValidationError(`gramOfRows: expected rows * cols = ${rows} * ${cols} = ${rows * cols} values, received ${y.length}`);
  }
  const g = new Float64Array(cols * cols);
  for (let r = 0; r < rows; r += 4) {
    const count = Math.min(4, rows - r);
    accumulateGram(g, y.subarray(r * cols, (r + count) * cols), count, cols);
  }
  mirrorUpper(g, cols);
  return g;
}
