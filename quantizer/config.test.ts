import { ConfigError, ValidationError } from '../errors';
import { Random } from '../random';
import { parseQuantizerSettings, trainOpq, trainPq, trainRq, type Matrix } from './index';

function randomMatrix(rows: number, cols: number, seed: number): Matrix {
  const rng = new Random(seed);
  return { data: Float32Array.from({ length: rows * cols }, () => rng.normal()), rows, cols };
}

describe('quantizer settings', () => {
  it('fills every default (the reference default is 4 levels x 256 codes)', () => {
    const s = parseQuantizerSettings({});
    expect(s).toMatchObject({ method: 'rqkmeans', levels: 4, codesPerLevel: 256 });
    expect(s.kmeans).toEqual({ iterations: 25, tolerance: 1e-4, maxPointsPerCentroid: 256, initSamplePerCentroid: 16 });
    expect(s.opq.rotationIterations).toBeGreaterThan(0);
    expect(s.balance.capacitySlack).toBe(0);
  });

  it.each([[100], [3], [1], [131072], [256.5]])('rejects codesPerLevel = %p naming the key, the rule and the value', (bad) => {
    const attempt = (): unknown => parseQuantizerSettings({ codesPerLevel: bad });
    expect(attempt).toThrow(ConfigError);
    expect(attempt).toThrow(/codesPerLevel/);
    expect(attempt).toThrow(new RegExp(`received number ${bad}`));
    if (Number.isInteger(bad)) expect(attempt).toThrow(/power of two between 2 and 65536/);
  });

  it('accepts every power of two from 2 to 65536', () => {
    for (let k = 2; k <= 65536; k *= 2) expect(parseQuantizerSettings({ codesPerLevel: k }).codesPerLevel).toBe(k);
  });

  it('rejects levels < 1, unknown keys (also nested) and unknown methods', () => {
    expect(() => parseQuantizerSettings({ levels: 0 })).toThrow(/invalid levels: .*received number 0/);
    expect(() => parseQuantizerSettings({ levles: 4 })).toThrow(/unknown keys: levles/);
    expect(() => parseQuantizerSettings({ kmeans: { iters: 3 } })).toThrow(/kmeans.*unknown keys: iters/);
    expect(() => parseQuantizerSettings({ method: 'vq' })).toThrow(/invalid method/);
  });

  it('rejects data the method cannot fit, naming the argument, expected and received', async () => {
    const x = randomMatrix(40, 10, 1);
    await expect(trainPq(x, { levels: 4, codesPerLevel: 8 }, new Random(1))).rejects.toThrow(ValidationError);
    await expect(trainPq(x, { levels: 4, codesPerLevel: 8 }, new Random(1))).rejects.toThrow(
      /dims must be divisible by levels \(books\).*received dims = 10, levels = 4/,
    );
    await expect(trainOpq(x, { levels: 3, codesPerLevel: 8 }, new Random(1))).rejects.toThrow(/divisible/);
    await expect(trainRq(x, { levels: 2, codesPerLevel: 64 }, new Random(1))).rejects.toThrow(
      /codesPerLevel = 64 needs at least 64 training rows .*received a matrix with 40 rows/,
    );
    await expect(trainPq(x, { method: 'rq', levels: 2, codesPerLevel: 8 }, new Random(1))).rejects.toThrow(ConfigError);
  });

  it('rejects malformed or non-finite matrices', async () => {
    const x = randomMatrix(40, 4, 2);
    await expect(trainRq({ ...x, rows: 41 }, { levels: 1, codesPerLevel: 4 }, new Random(1))).rejects.toThrow(/expected rows \* cols/);
    x.data[7] = Number.NaN;
    await expect(trainRq(x, { levels: 1, codesPerLevel: 4 }, new Random(1))).rejects.toThrow(/finite numbers, found NaN at row 1, column 3/);
  });
});
