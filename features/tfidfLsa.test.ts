import { ArtifactError, ValidationError } from '../errors';
import { Random } from '../random';
import { symmetricEigen } from './eigen';
import { cosineSimilarity, rowOf } from '../infra/matrix';
import { csrFromRows, randomizedSvd } from './sparse';
import { tfidfLsaSpec, type TfidfLsaSettings } from './tfidfLsa';

const SETTINGS: TfidfLsaSettings = { dims: 3, minDf: 1, maxFeatures: 1000, sublinearTf: true, oversample: 10, powerIterations: 2 };

describe('randomizedSvd', () => {
  it('matches the exact singular values and vectors of a small sparse matrix', () => {
    const random = new Random(11);
    const rows = 30;
    const cols = 12;
    const dense = new Float64Array(rows * cols);
    const sparseRows = Array.from({ length: rows }, (_, r) => {
      const entries: Array<[number, number]> = [];
      for (let c = 0; c < cols; c++) {
        if (random.next() < 0.4) {
          const v = random.normal();
          entries.push([c, v]);
          dense[r * cols + c] = v;
        }
      }
      return entries;
    });
    // Exact: eigendecomposition of A^T A.
    const ata = new Float64Array(cols * cols);
    for (let r = 0; r < rows; r++) {
      for (let i = 0; i < cols; i++) for (let j = 0; j < cols; j++) ata[i * cols + j]! += dense[r * cols + i]! * dense[r * cols + j]!;
    }
    const exact = symmetricEigen(ata, cols);
    const svd = randomizedSvd(csrFromRows(sparseRows, cols), 4, new Random(1));
    for (let j = 0; j < 4; j++) {
      expect(svd.singularValues[j]).toBeCloseTo(Math.sqrt(exact.values[j]!), 8);
      // Both use the same sign rule, so vectors agree exactly, not just up to sign.
      for (let c = 0; c < cols; c++) expect(svd.components.data[j * cols + c]).toBeCloseTo(exact.vectors[j * cols + c]!, 5);
    }
  });
});

describe('tfidf-lsa encoder', () => {
  const corpus = [
    'Cordless drill with lithium battery.',
    'Cordless drill driver, lithium ion battery pack.',
    'Laboratory pipette tips, sterile, 1000 ul.',
    'Sterile pipette tips for laboratory pipettes.',
    'Nitrile gloves, powder free, large.',
    'Disposable nitrile gloves, medium, powder free.',
  ];

  it('places near-duplicates closer than unrelated texts', async () => {
    const encoder = await tfidfLsaSpec(SETTINGS).fit(corpus, new Random(2));
    expect(encoder.dims).toBe(3);
    const out = await encoder.encode(['Cordless lithium drill.', 'Cordless drill, lithium battery.', 'Powder free nitrile gloves.']);
    expect(out.rows).toBe(3);
    const near = cosineSimilarity(rowOf(out, 0), rowOf(out, 1));
    const far = cosineSimilarity(rowOf(out, 0), rowOf(out, 2));
    expect(near).toBeGreaterThan(0.9);
    expect(far).toBeLessThan(0.3);
  });

  it('gives a zero row for text without vocabulary terms and reports progress', async () => {
    const encoder = await tfidfLsaSpec(SETTINGS).fit(corpus, new Random(2));
    const progress: number[] = [];
    const out = await encoder.encode(['', 'xyzzy plugh', '实验室'], { onProgress: (done) => progress.push(done) });
    expect(Array.from(out.data).every((v) => v === 0)).toBe(true);
    expect(progress).toEqual([3]);
  });

  it('restores from its state to an encoder with the same fingerprint and output', async () => {
    const spec = tfidfLsaSpec(SETTINGS);
    const fitted = await spec.fit(corpus, new Random(3));
    const state = fitted.state();
    // Params travel as JSON in the artifact; arrays as .npy.
    const restored = await spec.restore({ ...state, params: JSON.parse(JSON.stringify(state.params)) as Record<string, unknown> });
    expect(restored.fingerprint()).toBe(fitted.fingerprint());
    expect(Array.from((await restored.encode(corpus)).data)).toEqual(Array.from((await fitted.encode(corpus)).data));
    // Same corpus and seed: same fit; another seed still spans the same top space (k <= rank).
    expect((await spec.fit(corpus, new Random(3))).fingerprint()).toBe(fitted.fingerprint());
    await expect(spec.restore({ ...fitted.state(), format: 99 })).rejects.toThrow(ArtifactError);
  });

  it('names the setting to change when the vocabulary is empty', async () => {
    await expect(tfidfLsaSpec({ ...SETTINGS, minDf: 5 }).fit(corpus, new Random(1))).rejects.toThrow(ValidationError);
    await expect(tfidfLsaSpec({ ...SETTINGS, minDf: 5 }).fit(corpus, new Random(1))).rejects.toThrow(/minDf=5 of the 6 texts/);
  });

  it('uses fewer dims than requested when the corpus supports fewer', async () => {
    const encoder = await tfidfLsaSpec({ ...SETTINGS, dims: 50 }).fit(corpus, new Random(1));
    expect(encoder.dims).toBe(6);
  });
});
