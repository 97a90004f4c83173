/**
 * @jest-environment ./features/testing/nativeTypedArraysEnvironment.ts
 */
import { ValidationError } from '../../errors';
import { initTf, tf } from '../../infra/tf';
import { examplesFrom, makeBatch, type SequenceBatch } from '../../trainer';
import { buildOnnxEncoder, maxAbsDiff, type OnnxEncoderBuild } from './exportEncoder';
import { OnnxUserEncoder } from './onnxUserEncoder';
import { L, SIZES, batchOf, topK, trainedModel, type TrainedFixture } from './testing/fixtures';
import { TfjsUserEncoder } from './tfjsUserEncoder';
import type { UserEncoder } from './userEncoder';

beforeAll(async () => {
  await initTf();
});

const H = SIZES.dims;
const N = SIZES.items;

describe.each(['sasrec', 'ccfrec'] as const)('%s: ONNX and TF.js user vectors', (type) => {
  let fixture: TrainedFixture;
  let tfjs: TfjsUserEncoder;
  let onnxEngine: OnnxUserEncoder;
  let itemTable: Float32Array;
  let built: OnnxEncoderBuild;

  beforeAll(async () => {
    fixture = trainedModel(type);
    tfjs = new TfjsUserEncoder(fixture.model);
    built = buildOnnxEncoder({ model: fixture.model, checkpointId: `checkpoint-test-${type}`, sideInfo: fixture.sideInfo });
    onnxEngine = await OnnxUserEncoder.create(built.bytes, built.settings, { threads: 1 });
    const table = fixture.model.itemTable();
    itemTable = Float32Array.from(table.dataSync() as Float32Array);
    table.dispose();
  });

  afterAll(async () => {
    await onnxEngine.dispose();
    fixture.model.dispose();
  });

  async function expectParity(batch: SequenceBatch): Promise<Float32Array> {
    const [a, b] = [await onnxEngine.encode(batch), await tfjs.encode(batch)];
    expect(a).toHaveLength(batch.size * H);
    expect(maxAbsDiff(a, b)).toBeLessThan(1e-4);
    expect(topK(a, itemTable, H, 10)).toEqual(topK(b, itemTable, H, 10));
    for (let r = 0; r < batch.size; r++) {
      const norm = Math.hypot(...a.subarray(r * H, (r + 1) * H));
      expect(norm).toBeCloseTo(1, 5);
    }
    return a;
  }

  it('runs on trained weights (not the init)', () => {
    const moved = [...fixture.model.getWeights()].filter(([name, w]) => w.values.some((v, i) => v !== fixture.initial.get(name)?.[i]));
    expect(moved.map(([name]) => name)).toEqual(expect.arrayContaining(['encoder.positionEmbedding', 'encoder.transformer.layers.1.feedForward.outer.kernel']));
  });

  it('agree within 1e-4 with the same top-10 for histories of length 1, partial and full, alone and mixed', async () => {
    const ones = batchOf([[1], [N], [57]]);
    const partial = batchOf([[3, 4], [10, 11, 12], [99, 5, 7, 8]]);
    const full = batchOf([[1, 2, 3, 4, 5], [120, 119, 118, 117, 116], [7, 7, 7, 7, 7]]);
    const mixed = batchOf([[9], [9, 10, 11, 12, 13], [9, 10], [44, 45, 46, 47]]);
    await expectParity(ones);
    await expectParity(partial);
    await expectParity(full);
    const vectors = await expectParity(mixed);
    // A row's vector does not depend on the other rows of its batch.
    const alone = await onnxEngine.encode(batchOf([[9, 10]]));
    expect(maxAbsDiff(alone, vectors.subarray(2 * H, 3 * H))).toBeLessThan(1e-6);
  });

  it('agree on the fixture\'s test histories (one batch of 60 rows)', async () => {
    const test = fixture.data.test;
    await expectParity(makeBatch(test, Int32Array.from({ length: test.count }, (_, i) => i), L));
  });

  it('read the last L items of a longer history, as makeBatch cuts it, and pad narrower batches', async () => {
    const long = [3, 8, 13, 21, 34, 55, 89, 100, 101];
    const cut = makeBatch(examplesFrom([{ history: long, target: 1 }]), [0], L);
    expect(Array.from(cut.items)).toEqual(long.slice(-L));
    const fromLong = await expectParity(cut);
    expect(maxAbsDiff(fromLong, await onnxEngine.encode(batchOf([long.slice(-L)])))).toBe(0);
    // A batch of L' < L positions: both engines run it as it is.
    const narrow = batchOf([[5], [5, 6, 7]], 3);
    const narrowVectors = await expectParity(narrow);
    expect(maxAbsDiff(narrowVectors, await tfjs.encode(batchOf([[5], [5, 6, 7]])))).toBeLessThan(1e-5);
  });

  it('give each row the same vector whatever the rows per ONNX run (rows grouped by length, returned in batch order)', async () => {
    const test = fixture.data.test;
    const batch = makeBatch(test, Int32Array.from({ length: 12 }, (_, i) => 11 - i), L);
    const mixed = batchOf([[9, 10, 11, 12, 13], [9], [44, 45, 46, 47], [9, 10], [1], [3, 4, 5]]);
    for (const b of [batch, mixed]) {
      const reference = await tfjs.encode(b);
      for (const rowsPerRun of [1, 2, 5]) {
        const grouped = await OnnxUserEncoder.create(built.bytes, built.settings, { threads: 1, rowsPerRun });
        expect(maxAbsDiff(await grouped.encode(b), reference)).toBeLessThan(1e-4);
        expect(maxAbsDiff(await grouped.encode(b), await onnxEngine.encode(b))).toBeLessThan(1e-6);
        await grouped.dispose();
      }
    }
    await expect(OnnxUserEncoder.create(built.bytes, built.settings, { rowsPerRun: 0 })).rejects.toThrow(/rowsPerRun must be a positive integer, got number 0/);
  });

  it('the TF.js engine leaks no tensors', async () => {
    const batch = batchOf([[1, 2], [3]]);
    await tfjs.encode(batch);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 4; i++) await tfjs.encode(batch);
    expect(tf.memory().numTensors).toBe(before);
  });

  it.each([
    ['an id above N', batchOf([[1, 2], [3, N + 1]]), /row 1, position 1: item id must be in 1\.\.120 .*got number 121/],
    ['a negative id', batchOf([[-4]]), /row 0, position 0: item id must be in 1\.\.120 .*got number -4/],
    ['a padding id inside a history', { ...batchOf([[1, 2, 3]]), items: Int32Array.from([1, 0, 3, 0, 0]) }, /row 0, position 1: item id must be in 1\.\.120/],
    ['an id after the length', { ...batchOf([[1, 2]]), items: Int32Array.from([1, 2, 9, 0, 0]) }, /row 0, position 2: expected padding 0 after the row's 2 items .*got number 9/],
    ['a length of 0', { ...batchOf([[1]]), lengths: Int32Array.from([0]) }, /row 0: length must be in 1\.\.5, got number 0/],
    ['items of the wrong size', { ...batchOf([[1], [2]]), items: new Int32Array(7) }, /batch\.items must hold size \* maxLength = 2 \* 5 = 10 ids \(\[B, L\]\), got 7/],
    ['lengths of the wrong size', { ...batchOf([[1], [2]]), lengths: Int32Array.from([1]) }, /batch\.lengths must hold size = 2 lengths, got 1/],
    ['more positions than the model reads', batchOf([[1, 2, 3, 4, 5, 6]], 6), /batch\.maxLength is 6, the model reads at most 5 history items/],
    ['an empty batch', batchOf([]), /batch\.size must be a positive integer, got number 0/],
  ])('both engines refuse %s with the same ValidationError', async (_name, batch, message) => {
    for (const engine of [onnxEngine, tfjs] as UserEncoder[]) {
      const error = await engine.encode(batch as SequenceBatch).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ValidationError);
      expect((error as Error).message).toMatch(message);
    }
  });
});

// The graph runs every layer but the last on all positions and the last at each row's last
// position only: one layer (no full layer) and three (two) are other graphs than the default two.
describe.each([1, 3])('%i layers: ONNX and TF.js user vectors', (nLayers) => {
  it.each(['sasrec', 'ccfrec'] as const)('%s: agree within 1e-4 with the same top-10 on mixed lengths and the test histories', async (type) => {
    const fixture = trainedModel(type, 3, nLayers);
    const built = buildOnnxEncoder({ model: fixture.model, checkpointId: `checkpoint-test-${type}-${nLayers}`, sideInfo: fixture.sideInfo });
    const onnxEngine = await OnnxUserEncoder.create(built.bytes, built.settings, { threads: 1 });
    const table = fixture.model.itemTable();
    const itemTable = Float32Array.from(table.dataSync() as Float32Array);
    table.dispose();
    try {
      expect(built.settings.encoder.nLayers).toBe(nLayers);
      const test = fixture.data.test;
      for (const batch of [batchOf([[9], [9, 10, 11, 12, 13], [9, 10], [44, 45, 46, 47]]), makeBatch(test, Int32Array.from({ length: test.count }, (_, i) => i), L)]) {
        const [a, b] = [await onnxEngine.encode(batch), await new TfjsUserEncoder(fixture.model).encode(batch)];
        expect(maxAbsDiff(a, b)).toBeLessThan(1e-4);
        expect(topK(a, itemTable, H, 10)).toEqual(topK(b, itemTable, H, 10));
      }
    } finally {
      await onnxEngine.dispose();
      fixture.model.dispose();
    }
  });
});
