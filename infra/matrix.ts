import { ValidationError, describeValue } from '../errors';

/**
 * A dense row-major float32 matrix: element (r, c) is `data[r * cols + c]`.
 *
 * The one matrix representation of features/ and quantizer/ (text encodings [N, D], PCA
 * outputs, codebooks, residuals); shapes are given in comments as `[rows, cols]`.
 */
export interface Matrix {
  readonly data: Float32Array;
  readonly rows: number;
  readonly cols: number;
}

/** Wraps `data` as a `[rows, cols]` matrix after checking that the sizes agree (no copy). */
export function matrix(data: Float32Array, rows: number, cols: number): Matrix {
  if (!Number.isInteger(rows) || rows < 0 || !Number.isInteger(cols) || cols < 0) {
    throw new ValidationError(`matrix: rows and cols must be non-negative integers, received rows=${rows}, cols=${cols}`);
  }
  if (!(data instanceof Float32Array)) {
    throw new ValidationError(`matrix: data must be a Float32Array, received ${describeValue(data)}`);
  }
  if (data.length !== rows * cols) {
    throw new ValidationError(
      `matrix: data has ${data.length} elements, expected rows * cols = ${rows} * ${cols} = ${rows * cols}`,
    );
  }
  return { data, rows, cols };
}

/** A zero-filled `[rows, cols]` matrix. */
export function zeros(rows: number, cols: number): Matrix {
  return matrix(new Float32Array(rows * cols), rows, cols);
}

/** Checks that `x` is a well-formed matrix with finite values; `name` is used in the message. */
export function checkMatrix(x: Matrix, name: string, expectedCols?: number): void {
  if (x === null || typeof x !== 'object' || !(x.data instanceof Float32Array)) {
    throw new ValidationError(`${name} must be a Matrix {data: Float32Array, rows, cols}, received ${describeValue(x)}`);
  }
  if (x.data.length !== x.rows * x.cols) {
    throw new ValidationError(`${name}: data has ${x.data.length} elements, expected rows * cols = ${x.rows * x.cols}`);
  }
  if (expectedCols !== undefined && x.cols !== expectedCols) {
    throw new ValidationError(`${name} must have ${expectedCols} columns (the quantizer's dims), received ${x.cols}`);
  }
  for (let i = 0; i < x.data.length; i++) {
    const v = x.data[i] as number;
    if (!Number.isFinite(v)) {
      const row = Math.floor(i / Math.max(1, x.cols));
      throw new ValidationError(`${name} must hold finite numbers, found ${v} at row ${row}, column ${i - row * x.cols}`);
    }
  }
}

/** Copies columns `[start, end)` of `x` into a new `[rows, end - start]` matrix. */
export function sliceCols(x: Matrix, start: number, end: number): Matrix {
  const width = end - start;
  const out = new Float32Array(x.rows * width);
  for (let r = 0; r < x.rows; r++) {
    const from = r * x.cols + start;
    out.set(x.data.subarray(from, from + width), r * width);
  }
  return { data: out, rows: x.rows, cols: width };
}

/** Copies the given rows of `x` (in the order given) into a new matrix. */
export function takeRows(x: Matrix, rows: ArrayLike<number>): Matrix {
  const out = new Float32Array(rows.length * x.cols);
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i] as number;
    out.set(x.data.subarray(r * x.cols, (r + 1) * x.cols), i * x.cols);
  }
  return { data: out, rows: rows.length, cols: x.cols };
}

/** Squared L2 norm of every row: `[rows]`. */
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

/** `a - b` elementwise, as a new matrix (shapes must agree). */
export function subtract(a: Matrix, b: Matrix): Matrix {
  if (a.rows !== b.rows || a.cols !== b.cols) {
    throw new ValidationError(`subtract: shapes differ, [${a.rows}, ${a.cols}] vs [${b.rows}, ${b.cols}]`);
  }
  const out = new Float32Array(a.data.length);
  for (let i = 0; i < out.length; i++) out[i] = (a.data[i] as number) - (b.data[i] as number);
  return { data: out, rows: a.rows, cols: a.cols };
}

/**
 * `count` distinct row indices out of `[0, rows)`, drawn uniformly with `rng` and returned in
 * ascending order (partial Fisher-Yates).
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

/** A matrix of `rows x cols`, zero-filled or wrapping `data` (checked to have the right length). */
export function createMatrix(rows: number, cols: number, data?: Float32Array): Matrix {
  if (!Number.isInteger(rows) || rows < 0 || !Number.isInteger(cols) || cols < 0) {
    throw new ValidationError(`matrix shape must be two non-negative integers, got [${rows}, ${cols}]`);
  }
  const values = data ?? new Float32Array(rows * cols);
  if (values.length !== rows * cols) {
    throw new ValidationError(`matrix [${rows}, ${cols}] needs ${rows * cols} values, got ${values.length}`);
  }
  return { data: values, rows, cols };
}

/** Row `i` as a view (no copy) of length `cols`. */
export function rowOf(m: Matrix, i: number): Float32Array {
  if (!Number.isInteger(i) || i < 0 || i >= m.rows) {
    throw new ValidationError(`row index must be an integer in [0, ${m.rows}), got ${i}`);
  }
  return m.data.subarray(i * m.cols, (i + 1) * m.cols);
}

/** Stacks equally long rows into a matrix [rows.length, cols]. */
export function matrixFromRows(rows: ReadonlyArray<ArrayLike<number>>, cols?: number): Matrix {
  const width = cols ?? rows[0]?.length ?? 0;
  const out = createMatrix(rows.length, width);
  rows.forEach((row, i) => {
    if (row.length !== width) throw new ValidationError(`row ${i} has ${row.length} values, expected ${width}`);
    out.data.set(row, i * width);
  });
  return out;
}

/** Scales every row to unit L2 norm in place; all-zero rows stay zero. Returns `m`. */
export function l2NormalizeRows(m: Matrix): Matrix {
  const { data, rows, cols } = m;
  for (let i = 0; i < rows; i++) {
    let sq = 0;
    for (let j = i * cols; j < (i + 1) * cols; j++) sq += data[j] * data[j];
    if (sq > 0) {
      const inv = 1 / Math.sqrt(sq);
      for (let j = i * cols; j < (i + 1) * cols; j++) data[j] = data[j] * inv;
    }
  }
  return m;
}

/** Cosine similarity of two equally long vectors (0 when either is all zeros). */
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

/** Throws a ValidationError naming `what` unless `m` has the expected shape (undefined = any). */
export function assertShape(m: Matrix, rows: number | undefined, cols: number | undefined, what: string): void {
  if ((rows !== undefined && m.rows !== rows) || (cols !== undefined && m.cols !== cols)) {
    throw new ValidationError(
      `${what}: expected shape [${rows ?? '*'}, ${cols ?? '*'}], got [${m.rows}, ${m.cols}]`,
    );
  }
}
