import { Random } from '../random';
import { orthonormalizeColumns, signOfLargestEntry, symmetricEigen } from './eigen';

function randomSymmetric(n: number, random: Random): Float64Array {
  const a = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = i; j < n; j++) {
      const x = random.normal();
      a[i * n + j] = x;
      a[j * n + i] = x;
    }
  }
  return a;
}

/** max |A v_j - lambda_j v_j| and max |V V^T - I| over all pairs. */
function residuals(a: Float64Array, n: number): { eig: number; orth: number; sorted: boolean } {
  const { values, vectors } = symmetricEigen(a, n);
  let eig = 0;
  let orth = 0;
  for (let j = 0; j < n; j++) {
    for (let i = 0; i < n; i++) {
      let av = 0;
      for (let k = 0; k < n; k++) av += a[i * n + k]! * vectors[j * n + k]!;
      eig = Math.max(eig, Math.abs(av - values[j]! * vectors[j * n + i]!));
    }
    for (let l = 0; l < n; l++) {
      let dot = 0;
      for (let k = 0; k < n; k++) dot += vectors[j * n + k]! * vectors[l * n + k]!;
      orth = Math.max(orth, Math.abs(dot - (j === l ? 1 : 0)));
    }
  }
  const sorted = values.every((v, i) => i === 0 || v <= values[i - 1]!);
  return { eig, orth, sorted };
}

describe('symmetricEigen', () => {
  it('gives the known answer for [[2, 1], [1, 2]]', () => {
    const { values, vectors } = symmetricEigen(Float64Array.from([2, 1, 1, 2]), 2);
    expect(values[0]).toBeCloseTo(3, 12);
    expect(values[1]).toBeCloseTo(1, 12);
    // Sign rule: the largest-magnitude entry is positive (ties: the first one).
    expect(vectors[0]).toBeCloseTo(Math.SQRT1_2, 12);
    expect(vectors[1]).toBeCloseTo(Math.SQRT1_2, 12);
    expect(Math.abs(vectors[2]!)).toBeCloseTo(Math.SQRT1_2, 12);
    expect(vectors[2]! * vectors[3]!).toBeCloseTo(-0.5, 12);
  });

  it('handles diagonal, zero, 1x1 and repeated-eigenvalue matrices', () => {
    const diag = symmetricEigen(Float64Array.from([1, 0, 0, 0, 5, 0, 0, 0, 3]), 3);
    expect(Array.from(diag.values)).toEqual([5, 3, 1]);
    expect(Array.from(diag.vectors.subarray(0, 3))).toEqual([0, 1, 0]);
    expect(Array.from(symmetricEigen(new Float64Array(4), 2).values)).toEqual([0, 0]);
    expect(Array.from(symmetricEigen(Float64Array.from([-2]), 1).values)).toEqual([-2]);
    const identity = new Float64Array(16);
    for (let i = 0; i < 4; i++) identity[i * 4 + i] = 2;
    expect(residuals(identity, 4).orth).toBeLessThan(1e-12);
  });

  it('satisfies A v = lambda v with orthonormal vectors on random matrices', () => {
    const random = new Random(3);
    for (const n of [3, 17, 60]) {
      const r = residuals(randomSymmetric(n, random), n);
      expect(r.eig).toBeLessThan(1e-9);
      expect(r.orth).toBeLessThan(1e-10);
      expect(r.sorted).toBe(true);
    }
  });

  it('rejects non-finite input with the position', () => {
    expect(() => symmetricEigen(Float64Array.from([1, NaN, NaN, 1]), 2)).toThrow(/\[0, 1\] is NaN/);
  });
});

describe('signOfLargestEntry', () => {
  it('makes the largest-magnitude entry positive; near-ties go to the first', () => {
    expect(signOfLargestEntry([0.1, -0.9, 0.5])).toBe(-1);
    expect(signOfLargestEntry([0.1, 0.9, -0.5])).toBe(1);
    expect(signOfLargestEntry([-0.5, 0.5])).toBe(-1);
    expect(signOfLargestEntry([-0.5, 0.5 + 1e-13])).toBe(-1);
    expect(signOfLargestEntry([0, 0])).toBe(1);
  });
});

describe('orthonormalizeColumns', () => {
  it('makes columns orthonormal and keeps their span; a dependent column becomes zero', () => {
    const random = new Random(5);
    const rows = 40;
    const cols = 4;
    const y = new Float64Array(rows * cols);
    for (let r = 0; r < rows; r++) {
      y[r * cols] = random.normal();
      y[r * cols + 1] = random.normal();
      y[r * cols + 2] = 2 * y[r * cols]! - y[r * cols + 1]!; // dependent
      y[r * cols + 3] = random.normal() * 1e3;
    }
    const original = Float64Array.from(y);
    orthonormalizeColumns(y, rows, cols);
    const dot = (a: Float64Array, i: number, b: Float64Array, j: number) => {
      let s = 0;
      for (let r = 0; r < rows; r++) s += a[r * cols + i]! * b[r * cols + j]!;
      return s;
    };
    const norms = [0, 1, 2, 3].map((j) => dot(y, j, y, j));
    expect(norms.filter((v) => Math.abs(v - 1) < 1e-10)).toHaveLength(3);
    expect(norms.filter((v) => v < 1e-20)).toHaveLength(1);
    for (let i = 0; i < cols; i++) for (let j = i + 1; j < cols; j++) expect(Math.abs(dot(y, i, y, j))).toBeLessThan(1e-10);
    // Span kept: every original column is reproduced by projecting onto the new basis.
    for (let j = 0; j < cols; j++) {
      let err = 0;
      for (let r = 0; r < rows; r++) {
        let proj = 0;
        for (let k = 0; k < cols; k++) proj += y[r * cols + k]! * dot(y, k, original, j);
        err = Math.max(err, Math.abs(proj - original[r * cols + j]!));
      }
      expect(err).toBeLessThan(1e-6);
    }
  });
});
