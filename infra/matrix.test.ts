import { ValidationError } from '../errors';
import {
  checkMatrix,
  cosineSimilarity,
  createMatrix,
  gramMatrix,
  gramOfRows,
  identity,
  l2NormalizeRows,
  rowOf,
  rowSquaredNorms,
  sampleRowIndices,
  sliceCols,
  takeRows,
} from './matrix';

/** [[1, 2], [3, 4], [5, 6]] */
const x32 = () => createMatrix(3, 2, Float32Array.from([1, 2, 3, 4, 5, 6]));

describe('createMatrix', () => {
  it('wraps data without copying, or zero-fills', () => {
    const data = Float32Array.from([1, 2, 3, 4, 5, 6]);
    const m = createMatrix(2, 3, data);
    expect(m.data).toBe(data);
    expect([m.rows, m.cols]).toEqual([2, 3]);
    expect(Array.from(createMatrix(2, 2).data)).toEqual([0, 0, 0, 0]);
    expect(createMatrix(0, 5).data).toHaveLength(0);
  });

  it('rejects a bad shape, a length mismatch or data that is not float32, naming what it received', () => {
    expect(() => createMatrix(-1, 2)).toThrow(ValidationError);
    expect(() => createMatrix(1.5, 2)).toThrow(/non-negative integers, received \[1.5, 2\]/);
    expect(() => createMatrix(2, 2, new Float32Array(3))).toThrow(/\[2, 2\] needs rows \* cols = 4 values, received 3/);
    expect(() => createMatrix(1, 2, Float64Array.from([1, 2]) as unknown as Float32Array)).toThrow(/must be a Float32Array/);
  });
});

describe('identity and checkMatrix', () => {
  it('builds I', () => {
    expect(Array.from(identity(2).data)).toEqual([1, 0, 0, 1]);
  });

  it('checks structure, width and finiteness', () => {
    expect(() => checkMatrix(x32(), 'x', 2)).not.toThrow();
    expect(() => checkMatrix(x32(), 'x', 3)).toThrow(/x must have 3 columns, received 2/);
    expect(() => checkMatrix({ data: new Float32Array(5), rows: 3, cols: 2 }, 'x')).toThrow(/expected rows \* cols = 6/);
    expect(() => checkMatrix(createMatrix(1, 2, Float32Array.from([0, Infinity])), 'x')).toThrow(/found Infinity at row 0, column 1/);
  });
});

describe('row helpers', () => {
  it('views, takes and slices', () => {
    const x = x32();
    expect(Array.from(rowOf(x, 1))).toEqual([3, 4]);
    expect(() => rowOf(x, 3)).toThrow(/\[0, 3\), got 3/);
    expect(takeRows(x, [2, 0])).toEqual({ data: Float32Array.from([5, 6, 1, 2]), rows: 2, cols: 2 });
    expect(sliceCols(x, 1, 2)).toEqual({ data: Float32Array.from([2, 4, 6]), rows: 3, cols: 1 });
  });

  it('samples distinct sorted indices', () => {
    let i = 0;
    const rng = { int: (n: number) => (i++ * 7) % n };
    const picked = Array.from(sampleRowIndices(10, 4, rng));
    expect(new Set(picked).size).toBe(4);
    expect(picked).toEqual([...picked].sort((a, b) => a - b));
    expect(sampleRowIndices(3, 10, rng)).toHaveLength(3);
  });

  it('computes norms by hand and normalises rows, leaving zero rows alone', () => {
    expect(Array.from(rowSquaredNorms(x32()))).toEqual([5, 25, 61]);
    const m = l2NormalizeRows(createMatrix(2, 2, Float32Array.from([3, 4, 0, 0])));
    expect(Array.from(m.data)).toEqual([0.6000000238418579, 0.800000011920929, 0, 0]);
    expect(cosineSimilarity([1, 0], [1, 1])).toBeCloseTo(Math.SQRT1_2, 12);
    expect(cosineSimilarity([0, 0], [1, 1])).toBe(0);
  });
});

describe('gramMatrix and gramOfRows', () => {
  it('computes (X - c)^T (X - c) by hand on a 3x2 matrix', () => {
    const x = createMatrix(3, 2, Float32Array.from([1, 2, 3, 4, 5, 6]));
    expect(Array.from(gramMatrix(x))).toEqual([35, 44, 44, 56]);
    expect(Array.from(gramMatrix(x, Float64Array.from([3, 4])))).toEqual([8, 8, 8, 8]);
  });

  it('gives the same Gram matrix for float64 rows, over blocks of four and a remainder', () => {
    const rows = 7;
    const cols = 3;
    const y = Float64Array.from({ length: rows * cols }, (_, i) => ((i * 37) % 11) - 5);
    const expected = new Float64Array(cols * cols);
    for (let r = 0; r < rows; r++) {
      for (let i = 0; i < cols; i++) for (let j = 0; j < cols; j++) expected[i * cols + j]! += y[r * cols + i]! * y[r * cols + j]!;
    }
    expect(Array.from(gramOfRows(y, rows, cols))).toEqual(Array.from(expected));
    expect(Array.from(gramOfRows(y, rows, cols))).toEqual(Array.from(gramMatrix(createMatrix(rows, cols, Float32Array.from(y)))));
    expect(() => gramOfRows(y, rows, 4)).toThrow(/expected rows \* cols = 7 \* 4 = 28 values, received 21/);
  });
});
