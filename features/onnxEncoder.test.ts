/**
 * @jest-environment ./features/testing/nativeTypedArraysEnvironment.ts
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError } from '../errors';
import { Random } from '../random';
import { onnxSpec, type OnnxSettings } from './onnxEncoder';
import { writeTinyModelDir } from './testing/tinyOnnx';

// Vocabulary: [PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3, then these words from id 4.
const WORDS = ['red', 'blue', 'glue', 'tape', '##s', '.'];
const HIDDEN = 3;
const VOCAB = 4 + WORDS.length;

/** Row i = [i + 1, (i % 3) - 1, i / 2]; the padding row is huge so that pooling it would show. */
function table(): Float32Array {
  const t = new Float32Array(VOCAB * HIDDEN);
  for (let i = 0; i < VOCAB; i++) t.set([i + 1, (i % 3) - 1, i / 2], i * HIDDEN);
  t.set([100, -100, 100], 0);
  return t;
}

/** Mean of the given table rows, L2-normalised: the answer computed by hand. */
function expected(ids: number[]): number[] {
  const t = table();
  const mean = [0, 1, 2].map((h) => ids.reduce((s, id) => s + t[id * HIDDEN + h]!, 0) / ids.length);
  const norm = Math.hypot(...mean);
  return mean.map((v) => v / norm);
}

let tmp: string;
const settings = (modelDir: string, extra: Partial<OnnxSettings> = {}): OnnxSettings => ({
  modelDir,
  maxLength: 0,
  batchSize: 8,
  output: 'auto',
  threads: 1,
  ...extra,
});

beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'streamrec-onnx-'));
  await writeTinyModelDir(path.join(tmp, 'plain'), { embedding: table(), hidden: HIDDEN, words: WORDS });
  await writeTinyModelDir(path.join(tmp, 'bert'), { embedding: table(), hidden: HIDDEN, words: WORDS, withTokenTypeIds: true });
});
afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

describe('onnx encoder (tiny model built by the test)', () => {
  it('tokenizes offline, mean-pools over the attention mask and L2-normalises', async () => {
    const spec = await onnxSpec(settings(path.join(tmp, 'plain')));
    const encoder = await spec.fit([], new Random(1));
    expect(encoder.dims).toBe(HIDDEN);
    const out = await encoder.encode(['Red glue tapes.', 'blue xyz', '']);
    // [CLS] red glue tape ##s . [SEP] | [CLS] blue [UNK] [SEP] (+ 3 pads, masked out) | empty
    const want = [...expected([2, 4, 6, 7, 8, 9, 3]), ...expected([2, 5, 1, 3]), 0, 0, 0];
    Array.from(out.data).forEach((v, i) => expect(v).toBeCloseTo(want[i]!, 5));
    await spec.dispose();
  });

  it('feeds token_type_ids when the model declares them, and gives the same answer', async () => {
    const spec = await onnxSpec(settings(path.join(tmp, 'bert')));
    const out = await (await spec.fit([], new Random(1))).encode(['blue xyz']);
    Array.from(out.data).forEach((v, i) => expect(v).toBeCloseTo(expected([2, 5, 1, 3])[i]!, 5));
    await spec.dispose();
  });

  it('truncates to maxLength and is independent of batch size and order', async () => {
    const short = await onnxSpec(settings(path.join(tmp, 'plain'), { maxLength: 4 }));
    const truncated = await (await short.fit([], new Random(1))).encode(['Red glue tapes.']);
    Array.from(truncated.data).forEach((v, i) => expect(v).toBeCloseTo(expected([2, 4, 6, 3])[i]!, 5));
    await short.dispose();

    const texts = ['red', 'blue glue tape', 'tapes', 'red red red blue', 'glue.'];
    const one = await onnxSpec(settings(path.join(tmp, 'plain'), { batchSize: 1 }));
    const many = await onnxSpec(settings(path.join(tmp, 'plain'), { batchSize: 16 }));
    const a = await (await one.fit([], new Random(1))).encode(texts);
    const progress: number[] = [];
    const b = await (await many.fit([], new Random(1))).encode(texts, { onProgress: (done) => progress.push(done) });
    Array.from(a.data).forEach((v, i) => expect(b.data[i]).toBeCloseTo(v, 6));
    expect(progress).toEqual([5]);
    await one.dispose();
    await many.dispose();
  });

  it('has a fingerprint that follows the model bytes and settings, and a trivial state', async () => {
    const dir = path.join(tmp, 'plain');
    const a = await onnxSpec(settings(dir));
    const b = await onnxSpec(settings(dir));
    const c = await onnxSpec(settings(dir, { maxLength: 4 }));
    expect(a.fingerprint()).toBe(b.fingerprint());
    expect(c.fingerprint()).not.toBe(a.fingerprint());
    const other = path.join(tmp, 'other');
    await writeTinyModelDir(other, { embedding: table().map((v) => v * 2), hidden: HIDDEN, words: WORDS });
    const d = await onnxSpec(settings(other));
    expect(d.fingerprint()).not.toBe(a.fingerprint());
    const fitted = await a.fit([], new Random(1));
    expect(fitted.state()).toEqual({ encoder: 'onnx', format: 1, params: {}, arrays: {} });
    expect((await a.restore(fitted.state())).fingerprint()).toBe(fitted.fingerprint());
    await Promise.all([a, b, c, d].map((s) => s.dispose()));
  });

  it('says which file is missing from the model directory', async () => {
    const dir = path.join(tmp, 'incomplete');
    await writeTinyModelDir(dir, { embedding: table(), hidden: HIDDEN, words: WORDS });
    await fs.rm(path.join(dir, 'tokenizer.json'));
    await expect(onnxSpec(settings(dir))).rejects.toThrow(ConfigError);
    await expect(onnxSpec(settings(dir))).rejects.toThrow(/tokenizer\.json not found in .*incomplete/);
    await expect(onnxSpec(settings(''))).rejects.toThrow(/modelDir is empty/);
  });
});
