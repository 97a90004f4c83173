import {
  appendToSemanticIdTable,
  buildSemanticIdTable,
  codeUtilization,
  collisionStats,
  quantizationMetrics,
  relativeSquaredError,
  semanticIdOf,
  tableCodes,
} from './index';

const m = (rows: number, cols: number, values: number[]): { data: Float32Array; rows: number; cols: number } => ({
  data: Float32Array.from(values),
  rows,
  cols,
});

describe('quantization metrics (hand-computed)', () => {
  it('relative squared error = sum of squared errors / sum of squared norms', () => {
    // ||x||^2 = (9 + 16) + (1 + 0) = 26; errors: (1, 0) and (0, 2) -> 1 + 4 = 5.
    expect(relativeSquaredError(m(2, 2, [3, 4, 1, 0]), m(2, 2, [2, 4, 1, -2]))).toBeCloseTo(5 / 26, 12);
    expect(relativeSquaredError(m(1, 2, [3, 4]), m(1, 2, [3, 4]))).toBe(0);
    expect(() => relativeSquaredError(m(1, 2, [0, 0]), m(1, 2, [0, 0]))).toThrow(/all zero/);
    expect(() => relativeSquaredError(m(1, 2, [1, 0]), m(2, 1, [1, 0]))).toThrow(/expected the input's shape \[1, 2\]/);
  });

  it('utilization: fraction of codes used and perplexity = exp(entropy) per level', () => {
    // Level 0: codes 0,0,1,1 of 4 -> used 2/4, p = (1/2, 1/2), perplexity 2.
    // Level 1: codes 3,3,3,3 -> used 1/4, perplexity 1.
    const codes = Uint16Array.from([0, 3, 0, 3, 1, 3, 1, 3]);
    const u = codeUtilization(codes, 4, 2, 4);
    expect(u[0]).toMatchObject({ level: 0, used: 2, fractionUsed: 0.5 });
    expect(u[0]!.perplexity).toBeCloseTo(2, 12);
    expect(u[1]).toMatchObject({ level: 1, used: 1, fractionUsed: 0.25 });
    expect(u[1]!.perplexity).toBeCloseTo(1, 12);
    // p = (1/2, 1/4, 1/4): H = 1.5 ln 2, perplexity 2^1.5.
    const v = codeUtilization(Uint16Array.from([0, 0, 1, 2]), 4, 1, 8);
    expect(v[0]!.perplexity).toBeCloseTo(2 ** 1.5, 12);
    expect(v[0]!.fractionUsed).toBe(3 / 8);
  });

  it('collision rate = items whose full code vector is shared with another item / items', () => {
    // Vectors A=(1,2), A, B=(1,3), C=(0,2), C, C: 5 of 6 items collide.
    const codes = Uint16Array.from([1, 2, 1, 2, 1, 3, 0, 2, 0, 2, 0, 2]);
    expect(collisionStats(codes, 6, 2)).toEqual({ collisionRate: 5 / 6, distinctCodes: 3, maxItemsPerCode: 3 });
    expect(collisionStats(Uint16Array.from([0, 1, 2]), 3, 1).collisionRate).toBe(0);
    const all = quantizationMetrics(codes, 6, 2, 4);
    expect(all.relMse).toBeUndefined();
    expect(all.meanFractionUsed).toBeCloseTo((2 / 4 + 2 / 4) / 2, 12);
  });
});

describe('semantic-ID table', () => {
  const codes = Uint16Array.from([1, 2, 1, 2, 1, 3, 1, 2]); // items 1..4: A, A, B, A

  it('maps item ids 1..N to digits with row 0 as zero padding', () => {
    const t = buildSemanticIdTable(codes, 4, 2, 4);
    expect(t).toMatchObject({ items: 4, levels: 2, digits: 2, disambiguated: false });
    expect(Array.from(t.codes)).toEqual([0, 0, 1, 2, 1, 2, 1, 3, 1, 2]);
    expect(semanticIdOf(t, 0)).toEqual([0, 0]);
    expect(semanticIdOf(t, 3)).toEqual([1, 3]);
    expect(() => semanticIdOf(t, 5)).toThrow(/itemId must be an integer in \[0, 4\], received 5/);
  });

  it('the disambiguation digit numbers items sharing a code vector and makes every ID unique', () => {
    const t = buildSemanticIdTable(codes, 4, 2, 4, { disambiguate: true });
    expect(t.digits).toBe(3);
    expect([1, 2, 3, 4].map((id) => semanticIdOf(t, id))).toEqual([
      [1, 2, 0],
      [1, 2, 1],
      [1, 3, 0],
      [1, 2, 2],
    ]);
    expect(collisionStats(t.codes.subarray(3), 4, 3).collisionRate).toBe(0);
    expect(Array.from(tableCodes(t).codes)).toEqual(Array.from(codes));
  });

  it('appending keeps existing rows and continues each group’s numbering', () => {
    const t = buildSemanticIdTable(codes, 4, 2, 4, { disambiguate: true });
    const next = appendToSemanticIdTable(t, Uint16Array.from([1, 2, 0, 0]), 2);
    expect(next.items).toBe(6);
    expect(Array.from(next.codes.subarray(0, t.codes.length))).toEqual(Array.from(t.codes));
    expect(semanticIdOf(next, 5)).toEqual([1, 2, 3]);
    expect(semanticIdOf(next, 6)).toEqual([0, 0, 0]);
    expect(() => appendToSemanticIdTable(t, Uint16Array.from([4, 0]), 1)).toThrow(/code 4 .* out of range \[0, 4\)/);
  });
});
