import { createMatrix } from '../../infra/matrix';
import { VectorRows } from './rows';

describe('VectorRows', () => {
  const rowsOf = (ids: number[], dims = 2): VectorRows => {
    const rows = new VectorRows(dims);
    const m = createMatrix(ids.length, dims, Float32Array.from({ length: ids.length * dims }, (_, i) => i));
    rows.append(rows.checkNew(ids, m, 'test'), m.data);
    return rows;
  };

  it('finds the row of dense and sparse ids, and nothing for ids it does not hold', () => {
    const rows = rowsOf([1, 2, 3, 2_000_000_000, 7]);
    expect([1, 2, 3, 2_000_000_000, 7].map((id) => rows.row(id))).toEqual([0, 1, 2, 3, 4]);
    for (const id of [0, 4, 6, 8, 5_000, 1_999_999_999, 2_147_483_647]) expect([id, rows.has(id), rows.row(id)]).toEqual([id, false, undefined]);
    expect(Array.from(rows.ids)).toEqual([1, 2, 3, 2_000_000_000, 7]);
  });

  it('adopts first rows without a copy, then grows into storage of its own on an append', () => {
    const rows = new VectorRows(2);
    const vectors = Float32Array.from([1, 2, 3, 4, 5, 6]);
    rows.adopt(rows.checkNew([7, 3, 9], createMatrix(3, 2, vectors), 'test'), vectors);
    expect([7, 3, 9, 1].map((id) => rows.row(id))).toEqual([0, 1, 2, undefined]);
    expect(rows.storage.buffer).toBe(vectors.buffer);
    expect(() => rows.adopt(Int32Array.from([1]), new Float32Array(2))).toThrow(/already held/);
    const more = createMatrix(1, 2, Float32Array.from([7, 8]));
    rows.append(rows.checkNew([1], more, 'test'), more.data);
    expect(rows.storage.buffer).not.toBe(vectors.buffer);
    expect(Array.from(rows.vectors)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(rows.row(1)).toBe(3);
  });

  it('keeps every id findable as appends grow the dense array past ids first kept apart', () => {
    const rows = rowsOf([5_000]); // far above 4 x 1 rows + 1024: kept apart at first
    expect(rows.row(5_000)).toBe(0);
    const more = Array.from({ length: 2_000 }, (_, i) => i + 1); // rows enough for ids up to ~9,000: the array grows over 5,000
    const m = createMatrix(more.length, 2, new Float32Array(more.length * 2));
    rows.append(rows.checkNew(more, m, 'test'), m.data);
    expect(rows.row(5_000)).toBe(0);
    expect(rows.row(1)).toBe(1);
    expect(rows.row(2_000)).toBe(2_000);
    expect(rows.has(2_001)).toBe(false);
    expect(() => rows.checkNew([5_000], createMatrix(1, 2, new Float32Array(2)), 'again')).toThrow(/item 5000 \(ids\[0\]\) is already indexed/);
  });

  it('checks new rows a slice at a time as checkNew does: the same ids, the same errors, from any slice', async () => {
    const n = 20_000; // three slices
    const m = createMatrix(n, 2, Float32Array.from({ length: n * 2 }, (_, i) => i / n));
    const ids = Array.from({ length: n }, (_, i) => i + 1);
    expect(Array.from(await new VectorRows(2).checkNewInSlices(ids, m, 'load'))).toEqual(Array.from(new VectorRows(2).checkNew(ids, m, 'load')));
    const message = async (idsNow: number[], data: Float32Array): Promise<[string, string]> => {
      const sync = (() => {
        try {
          new VectorRows(2).checkNew(idsNow, createMatrix(n, 2, data), 'load');
          return 'no error';
        } catch (error) {
          return (error as Error).message;
        }
      })();
      const sliced = await new VectorRows(2).checkNewInSlices(idsNow, createMatrix(n, 2, data), 'load').then(
        () => 'no error',
        (error: Error) => error.message,
      );
      return [sync, sliced];
    };
    const nan = m.data.slice();
    nan[2 * 17_000 + 1] = Number.NaN;
    expect(await message(ids, nan)).toEqual(['load: vectors must hold finite numbers, found NaN at row 17000, column 1', 'load: vectors must hold finite numbers, found NaN at row 17000, column 1']);
    const twice = ids.slice();
    twice[19_000] = 5; // a duplicate of a row in the first slice
    expect(await message(twice, m.data)).toEqual(['load: item 5 appears twice in ids (again at ids[19000])', 'load: item 5 appears twice in ids (again at ids[19000])']);
    await expect(new VectorRows(3).checkNewInSlices(ids, m, 'load')).rejects.toThrow('load: vectors must have 3 columns, received 2');
  });
});
