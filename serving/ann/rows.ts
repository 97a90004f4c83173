import { ValidationError, describeValue } from '../../errors';
import { checkFiniteRows, checkMatrix, checkMatrixShape, type Matrix, isFloat32Array } from '../../infra/matrix';
import { inSlices } from '../../infra/slices';
import type { AnnExclusion, AnnSearchOptions } from './annIndex';

/**
 * The item vectors every {@link AnnIndex} keeps in JS memory (to score hits with `dot64`, to save
 * them, to rescore HNSW candidates): rows in insertion order, each with its item id, and the
 * argument checks the implementations share.
 */

/** Largest item id (ids are stored as int32). */
export const MAX_ITEM_ID = 2 ** 31 - 1;

/**
 * Extra candidates a search takes from its float32 stage (TF.js topk, hnswlib) before rescoring
 * them with `dot64` and cutting to `k`. The float32 and float64 scores differ by about
 * `D * 2^-24` for unit vectors, so the final top-k is right unless more than this many items lie
 * within that distance of the k-th score; it also lets equal scores at the k-th place resolve by id.
 */
export const RESCORE_MARGIN = 16;

/** Rows checked between two yields to the event loop by {@link VectorRows.checkNewInSlices} (~2-4 ms at 64 dims). */
const CHECK_SLICE_ROWS = 8192;

/** Dense rows `[count, dims]` in insertion order with their item ids `[count]`; grows by doubling. */
export class VectorRows {
  private data: Float32Array; // [capacity, dims]
  private idOf: Int32Array; // [capacity]
  /**
   * Row + 1 of item `id` at `[id]` (0: not held), for ids below its length; item ids are dense
   * in practice (1..N), so a lookup on the request path is an array read, not a hash probe. Ids
   * far above the row count (sparse ids) are kept in `sparse` instead.
   */
  private rowPlusOne = new Int32Array(0);
  private readonly sparse = new Map<number, number>();
  private count = 0;

  constructor(
    readonly dims: number,
    capacity = 0,
  ) {
    this.data = new Float32Array(capacity * dims);
    this.idOf = new Int32Array(capacity);
  }

  get size(): number {
    return this.count;
  }

  /** The rows `[size, dims]` as a view (no copy); valid until the next append. */
  get vectors(): Float32Array {
    return this.data.subarray(0, this.count * this.dims);
  }

  /** The item ids by row `[size]` as a view (no copy); valid until the next append. */
  get ids(): Int32Array {
    return this.idOf.subarray(0, this.count);
  }

  has(id: number): boolean {
    return this.row(id) !== undefined;
  }

  /** Row of item `id`, or undefined when it is not held. */
  row(id: number): number | undefined {
    if (id >= 0 && id < this.rowPlusOne.length) {
      const r = this.rowPlusOne[id] as number;
      return r > 0 ? r - 1 : undefined;
    }
    return this.sparse.get(id);
  }

  /** Records `row` for `id`: in the dense array when `id` is below a few times the row count (growing it), else sparse. */
  private setRow(id: number, row: number): void {
    if (id >= this.rowPlusOne.length && id < 4 * this.count + 1024) {
      const grown = new Int32Array(Math.max(id + 1, this.rowPlusOne.length * 2, 1024));
      grown.set(this.rowPlusOne);
      // Sparse ids the array now covers move into it (a lookup reads one place only).
      for (const [sparseId, sparseRow] of this.sparse) {
        if (sparseId < grown.length) {
          grown[sparseId] = sparseRow + 1;
          this.sparse.delete(sparseId);
        }
      }
      this.rowPlusOne = grown;
    }
    if (id < this.rowPlusOne.length) this.rowPlusOne[id] = row + 1;
    else this.sparse.set(id, row);
  }

  /** The raw storage `[capacity, dims]` (rows >= size are unused); for scoring loops. */
  get storage(): Float32Array {
    return this.data;
  }

  /** Checks new items against the rows held (see {@link AnnIndex.add}) and returns the ids as int32. */
  checkNew(ids: ArrayLike<number>, vectors: Matrix, where: string): Int32Array {
    const out = this.checkShapes(ids, vectors, where);
    this.checkRows(ids, vectors, where, 0, ids.length, new Set<number>(), out);
    return out;
  }

  /**
   * {@link checkNew} a slice of rows at a time ({@link CHECK_SLICE_ROWS}), yielding to the event
   * loop between slices: for a saved index being opened by a server that answers meanwhile (at
   * 100,000 rows the checks take ~100-180 ms, which a request arriving then would wait for).
   */
  async checkNewInSlices(ids: ArrayLike<number>, vectors: Matrix, where: string): Promise<Int32Array> {
    const out = this.checkShapes(ids, vectors, where);
    const seen = new Set<number>();
    await inSlices(ids.length, CHECK_SLICE_ROWS, (from, to) => this.checkRows(ids, vectors, where, from, to, seen, out));
    return out;
  }

  /** The argument checks of {@link checkNew} that do not read every value; returns the output array. */
  private checkShapes(ids: ArrayLike<number>, vectors: Matrix, where: string): Int32Array {
    checkMatrixShape(vectors, `${where}: vectors`, this.dims);
    if (ids === null || typeof ids !== 'object' || typeof ids.length !== 'number') {
      throw new ValidationError(`${where}: ids must be an array of item ids, received ${describeValue(ids)}`);
    }
    if (ids.length !== vectors.rows) {
      throw new ValidationError(`${where}: ids has ${ids.length} entries but vectors has ${vectors.rows} rows; expected one id per row`);
    }
    return new Int32Array(ids.length);
  }

  /** Rows `[from, to)` of {@link checkNew}: finite values, valid ids, none held already nor seen in an earlier row. */
  private checkRows(ids: ArrayLike<number>, vectors: Matrix, where: string, from: number, to: number, seen: Set<number>, out: Int32Array): void {
    checkFiniteRows(vectors, `${where}: vectors`, from, to);
    for (let i = from; i < to; i++) {
      const id = ids[i] as number;
      if (!Number.isInteger(id) || id < 1 || id > MAX_ITEM_ID) {
        throw new ValidationError(`${where}: ids[${i}] must be an integer item id in [1, ${MAX_ITEM_ID}] (0 is padding), received ${describeValue(id)}`, {
          context: { itemId: String(id) },
        });
      }
      if (this.has(id)) {
        throw new ValidationError(`${where}: item ${id} (ids[${i}]) is already indexed; an item's vector cannot be replaced, rebuild the index instead`, {
          context: { itemId: String(id) },
        });
      }
      if (seen.has(id)) {
        throw new ValidationError(`${where}: item ${id} appears twice in ids (again at ids[${i}])`, { context: { itemId: String(id) } });
      }
      seen.add(id);
      out[i] = id;
    }
  }

  /**
   * The first rows, taken over without a copy: `vectors` `[ids.length, dims]` becomes the storage
   * (checked ids, as {@link checkNew} returns them). A later append copies it into a larger one.
   */
  adopt(ids: Int32Array, vectors: Float32Array): void {
    if (this.count > 0) throw new Error('VectorRows.adopt: rows are already held');
    this.data = vectors.subarray(0, ids.length * this.dims);
    this.idOf = ids.slice();
    this.count = ids.length;
    for (let i = 0; i < ids.length; i++) this.setRow(ids[i] as number, i);
  }

  /** Appends rows already checked by {@link checkNew}. */
  append(ids: Int32Array, vectors: Float32Array): void {
    const need = this.count + ids.length;
    if (need > this.idOf.length) {
      const capacity = Math.max(need, this.idOf.length * 2, 16);
      const data = new Float32Array(capacity * this.dims);
      data.set(this.data.subarray(0, this.count * this.dims));
      const idOf = new Int32Array(capacity);
      idOf.set(this.idOf.subarray(0, this.count));
      this.data = data;
      this.idOf = idOf;
    }
    this.data.set(vectors.subarray(0, ids.length * this.dims), this.count * this.dims);
    const first = this.count;
    this.count = need; // before setRow: the dense array is sized by the row count
    for (let i = 0; i < ids.length; i++) {
      this.idOf[first + i] = ids[i] as number;
      this.setRow(ids[i] as number, first + i);
    }
  }
}

/** The ids 1..rows of a matrix built into an index: `[rows]`. */
export function denseIds(rows: number): Int32Array {
  const ids = new Int32Array(rows);
  for (let i = 0; i < rows; i++) ids[i] = i + 1;
  return ids;
}

/**
 * Checks a query batch against the index width and returns it as row-major `[B, dims]` values
 * with B. A Float32Array must hold a whole number of rows of `dims` values.
 */
export function checkQueries(queries: Matrix | Float32Array, dims: number, where: string): { data: Float32Array; batch: number } {
  if (isFloat32Array(queries)) {
    if (queries.length % dims !== 0) {
      throw new ValidationError(
        `${where}: queries must be [B, ${dims}] (the index dims), a Float32Array of B * ${dims} values; received ${queries.length} values, not a multiple of ${dims}`,
      );
    }
    checkMatrix({ data: queries, rows: queries.length / dims, cols: dims }, `${where}: queries`);
    return { data: queries, batch: queries.length / dims };
  }
  if (queries === null || typeof queries !== 'object' || !isFloat32Array(queries.data)) {
    throw new ValidationError(`${where}: queries must be a Matrix [B, ${dims}] or a Float32Array, received ${describeValue(queries)}`);
  }
  if (queries.cols !== dims) {
    throw new ValidationError(`${where}: queries must be [B, ${dims}] (the index dims), received [${queries.rows}, ${queries.cols}]`);
  }
  checkMatrix(queries, `${where}: queries`, dims);
  return { data: queries.data, batch: queries.rows };
}

/** Checks `k` (a non-negative integer). */
export function checkK(k: number, where: string): void {
  if (!Number.isInteger(k) || k < 0) throw new ValidationError(`${where}: k must be a non-negative integer, received ${describeValue(k)}`);
}

/** The exclusions as one Set (or undefined) per query: `[B]`. */
export function checkExclusions(options: AnnSearchOptions | undefined, batch: number, where: string): Array<ReadonlySet<number> | undefined> {
  const exclude = options?.exclude;
  if (exclude === undefined) return new Array<undefined>(batch).fill(undefined);
  if (!Array.isArray(exclude) || exclude.length !== batch) {
    throw new ValidationError(`${where}: exclude must have one entry per query (${batch}), received ${describeValue(exclude)}`);
  }
  return exclude.map((e: AnnExclusion | undefined, i) => {
    if (e === undefined || e === null) return undefined;
    if (e instanceof Set) return e as ReadonlySet<number>;
    if (typeof e === 'object' && typeof (e as ArrayLike<number>).length === 'number') return new Set(Array.from(e as ArrayLike<number>));
    throw new ValidationError(`${where}: exclude[${i}] must be a Set or an array of item ids, received ${describeValue(e)}`);
  });
}

/** Checks an `ef` override (a positive integer) when given. */
export function checkEf(ef: number | undefined, where: string): void {
  if (ef !== undefined && (!Number.isInteger(ef) || ef < 1)) {
    throw new ValidationError(`${where}: ef must be a positive integer, received ${describeValue(ef)}`);
  }
}

/** How many of `excluded` the rows hold (hits that a search must skip). */
export function excludedPresent(rows: VectorRows, excluded: ReadonlySet<number> | undefined): number {
  if (!excluded) return 0;
  let n = 0;
  for (const id of excluded) if (rows.has(id)) n++;
  return n;
}

/** The query row `b` of `[B, dims]` widened to float64 `[dims]` (the left side of `dot64`). */
export function queryRow(data: Float32Array, b: number, dims: number, out: Float64Array): Float64Array {
  for (let j = 0; j < dims; j++) out[j] = data[b * dims + j] as number;
  return out;
}

/** The width of a matrix an index is built from (at least 1). */
export function checkDims(vectors: Matrix, where: string): number {
  if (vectors === null || typeof vectors !== 'object' || !Number.isInteger(vectors.cols) || vectors.cols < 1) {
    throw new ValidationError(`${where}: vectors must be a Matrix [N, D] with D >= 1, received ${vectors === null || typeof vectors !== 'object' ? String(vectors) : `cols ${String(vectors.cols)}`}`);
  }
  return vectors.cols;
}
