import { ArtifactError, ConfigError } from '../errors';
import { Random } from '../random';
import { createMatrix, type Matrix } from '../infra/matrix';
import { applyPca, explainedVarianceRatio, fitPca, pcaArrays, pcaFromArrays } from './pca';

function randomCorrelated(n: number, d: number, random: Random): Matrix {
  // Columns with very different scales and a shared factor, plus an offset.
  const m = createMatrix(n, d);
  for (let r = 0; r < n; r++) {
    const shared = random.normal();
    for (let j = 0; j < d; j++) m.data[r * d + j] = 3 + shared * (j + 1) + random.normal() * (0.5 + j);
  }
  return m;
}

function columnStats(m: Matrix): { means: number[]; cov: number[][] } {
  const means = Array.from({ length: m.cols }, (_, j) => {
    let s = 0;
    for (let r = 0; r < m.rows; r++) s += m.data[r * m.cols + j]!;
    return s / m.rows;
  });
  const cov = means.map((mi, i) =>
    means.map((mj, j) => {
      let s = 0;
      for (let r = 0; r < m.rows; r++) s += (m.data[r * m.cols + i]! - mi) * (m.data[r * m.cols + j]! - mj);
      return s / (m.rows - 1);
    }),
  );
  return { means, cov };
}

describe('PCA with whitening', () => {
  it('gives the hand-computed answer on points along a line', () => {
    const x = createMatrix(4, 2, Float32Array.from([1, 1, 2, 2, 3, 3, 4, 4]));
    const model = fitPca(x, 1);
    // Covariance [[5/3, 5/3], [5/3, 5/3]]: eigenvalue 10/3 along (1, 1)/sqrt(2).
    expect(model.variances[0]).toBeCloseTo(10 / 3, 5);
    expect(model.components.data[0]).toBeCloseTo(Math.SQRT1_2, 6);
    expect(model.components.data[1]).toBeCloseTo(Math.SQRT1_2, 6);
    const out = applyPca(model, x);
    const first = (-1.5 * Math.SQRT2) / Math.sqrt(10 / 3);
    expect(out.data[0]).toBeCloseTo(first, 5);
    expect(out.data[3]).toBeCloseTo(-first, 5);
    expect(explainedVarianceRatio(model)).toBeCloseTo(1, 6);
  });

  it('whitened training output has zero mean and identity covariance (ddof 1)', () => {
    const x = randomCorrelated(500, 6, new Random(1));
    const out = applyPca(fitPca(x, 4), x);
    const { means, cov } = columnStats(out);
    for (const m of means) expect(Math.abs(m)).toBeLessThan(1e-5);
    cov.forEach((row, i) => row.forEach((v, j) => expect(Math.abs(v - (i === j ? 1 : 0))).toBeLessThan(1e-4)));
  });

  it('without whitening keeps variances equal to the eigenvalues, largest first', () => {
    const x = randomCorrelated(400, 5, new Random(2));
    const model = fitPca(x, 3, { whiten: false });
    const { cov } = columnStats(applyPca(model, x));
    for (let j = 0; j < 3; j++) expect(cov[j]![j]! / model.variances[j]!).toBeCloseTo(1, 4);
    expect(model.variances[0]!).toBeGreaterThanOrEqual(model.variances[1]!);
    expect(model.variances[1]!).toBeGreaterThanOrEqual(model.variances[2]!);
  });

  it('transforms a new row exactly as the same row in the training set', () => {
    const x = randomCorrelated(50, 4, new Random(3));
    const model = fitPca(x, 2);
    const all = applyPca(model, x);
    const one = applyPca(model, createMatrix(1, 4, x.data.slice(8, 12)));
    expect(Array.from(one.data)).toEqual(Array.from(all.data.slice(4, 6)));
  });

  it('gives scale 0 to components beyond the rank instead of amplifying noise', () => {
    const x = randomCorrelated(3, 5, new Random(4)); // 3 rows: rank of the centered data is 2
    const model = fitPca(x, 4);
    expect(Array.from(model.scales.slice(2))).toEqual([0, 0]);
    const out = applyPca(model, x);
    for (let r = 0; r < 3; r++) expect([out.data[r * 4 + 2], out.data[r * 4 + 3]]).toEqual([0, 0]);
    expect(columnStats(out).cov[0]![0]).toBeCloseTo(1, 4);
  });

  it('rejects more components than input dimensions, and too few rows', () => {
    expect(() => fitPca(createMatrix(10, 3), 4)).toThrow(ConfigError);
    expect(() => fitPca(createMatrix(1, 3), 2)).toThrow(/at least 2 rows/);
  });

  it('round-trips through its stored arrays and rejects mismatched shapes', () => {
    const x = randomCorrelated(30, 4, new Random(5));
    const model = fitPca(x, 2);
    const restored = pcaFromArrays(pcaArrays(model), { whiten: true, totalVariance: model.totalVariance }, 'test');
    expect(Array.from(applyPca(restored, x).data)).toEqual(Array.from(applyPca(model, x).data));
    const arrays = { ...pcaArrays(model), mean: createMatrix(1, 3) };
    expect(() => pcaFromArrays(arrays, { whiten: true, totalVariance: 1 }, 'pca-x')).toThrow(ArtifactError);
    expect(() => pcaFromArrays(arrays, { whiten: true, totalVariance: 1 }, 'pca-x')).toThrow(/pca-x: PCA mean has shape \[1, 3\]/);
  });
});
