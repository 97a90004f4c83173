/**
 * @jest-environment ./features/testing/nativeTypedArraysEnvironment.ts
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ArtifactError, BackendError, ValidationError } from '../../errors';
import { ArtifactStore } from '../../infra/artifacts';
import { initTf } from '../../infra/tf';
import { Random } from '../../random';
import { clusteredUnitVectors } from '../ann/synthetic';
import { buildOnnxEncoder, writeOnnxEncoder, type OnnxEncoderBuild } from './exportEncoder';
import { InferenceThread, ThreadedItemScorer, ThreadedUserEncoder } from './inferenceThread';
import { OnnxItemScorer } from './itemScorer';
import { readOnnxEncoder } from './manifest';
import { OnnxUserEncoder } from './onnxUserEncoder';
import { batchOf, trainedModel, type TrainedFixture } from './testing/fixtures';

let ccfrec: TrainedFixture;
let built: OnnxEncoderBuild;
let thread: InferenceThread;

beforeAll(async () => {
  await initTf();
  ccfrec = trainedModel('ccfrec');
  built = buildOnnxEncoder({ model: ccfrec.model, checkpointId: 'checkpoint-00000000000000cc', sideInfo: ccfrec.sideInfo });
  thread = new InferenceThread();
});

afterAll(async () => {
  await thread.close();
  ccfrec.model.dispose();
});

describe('ThreadedUserEncoder', () => {
  it('gives the vectors the same graph gives on this thread, to concurrent callers too', async () => {
    const here = await OnnxUserEncoder.create(built.bytes, built.settings, { threads: 1 });
    const there = await ThreadedUserEncoder.create(thread, built.bytes, built.settings, { threads: 1 });
    try {
      expect({ kind: there.kind, items: there.itemCount, H: there.hiddenSize, L: there.maxHistoryLength }).toEqual({
        kind: 'onnx',
        items: here.itemCount,
        H: here.hiddenSize,
        L: here.maxHistoryLength,
      });
      const batches = [batchOf([[1], [4, 5, 6]]), batchOf([[10, 20, 30, 40, 50]]), batchOf([[7, 8], [9], [100, 101, 102]])];
      const expected = await Promise.all(batches.map((b) => here.encode(b)));
      const got = await Promise.all(batches.map((b) => there.encode(b)));
      got.forEach((vectors, i) => expect(Array.from(vectors)).toEqual(Array.from(expected[i] as Float32Array)));
    } finally {
      await here.dispose();
      await there.dispose();
    }
  });

  it('opens a stored encoder from its path (the token table mapped from beside the graph), with the same vectors', async () => {
    const root = await mkdtemp(path.join(tmpdir(), 'streamrec-inference-thread-'));
    try {
      const store = new ArtifactStore(root);
      const artifact = await writeOnnxEncoder(store, { model: ccfrec.model, checkpointId: 'checkpoint-00000000000000cc', sideInfo: ccfrec.sideInfo });
      const stored = await readOnnxEncoder(store, artifact.id);
      expect(typeof stored.model).toBe('string');
      const here = await OnnxUserEncoder.create(built.bytes, built.settings, { threads: 1 });
      const there = await ThreadedUserEncoder.create(thread, stored.model, stored.settings, { threads: 1 });
      const batch = batchOf([[1], [4, 5, 6], [10, 20, 30, 40, 50]]);
      expect(Array.from(await there.encode(batch))).toEqual(Array.from(await here.encode(batch)));
      await here.dispose();
      await there.dispose();
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it('refuses a bad batch before it crosses, and a disposed engine', async () => {
    const there = await ThreadedUserEncoder.create(thread, built.bytes, built.settings);
    await expect(there.encode(batchOf([[1, 999]]))).rejects.toThrow(ValidationError);
    await there.dispose();
    await expect(there.encode(batchOf([[1]]))).rejects.toThrow(/encode after dispose/);
  });

  it("brings the worker's error back with its class: bytes that are not a graph are an ArtifactError naming the checkpoint", async () => {
    const error = await ThreadedUserEncoder.create(thread, new Uint8Array([1, 2, 3, 4]), built.settings).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ArtifactError);
    expect((error as Error).message).toMatch(/checkpoint-00000000000000cc: onnxruntime cannot load the graph/);
  });
});

describe('ThreadedItemScorer', () => {
  const H = 8;
  const N = 300;
  const rng = new Random(5);
  const table = new Float32Array((N + 1) * H);
  table.set(clusteredUnitVectors(N, H, rng).data, H);

  it("gives this thread's scores and error bound, concurrent callers' queries in one message", async () => {
    const here = await OnnxItemScorer.create(table, H);
    const there = await ThreadedItemScorer.create(thread, table, H);
    try {
      expect(there.maxRowNorm).toBeCloseTo(here.maxRowNorm, 12);
      expect(there.errorBound(1.5)).toBe(here.errorBound(1.5));
      const queries = Array.from({ length: 4 }, (_, b) => clusteredUnitVectors(1 + (b % 2), H, rng).data);
      const expected = await Promise.all(queries.map((q) => here.scores(q, q.length / H)));
      const before = there.runs.calls;
      const got = await Promise.all(queries.map((q) => there.scores(q, q.length / H)));
      expect(there.runs.calls - before).toBe(1);
      got.forEach((scores, b) => {
        expect(scores).toHaveLength(((queries[b] as Float32Array).length / H) * (N + 1));
        expect(Array.from(scores)).toEqual(Array.from(expected[b] as Float32Array));
      });
      await expect(there.scores(new Float32Array(H + 1), 1)).rejects.toThrow(`expected [1, ${H}] queries`);
    } finally {
      await here.dispose();
      await there.dispose();
    }
    await expect(there.scores(new Float32Array(H), 1)).rejects.toThrow(/after dispose/);
  });

  it('refuses a table that is not [rows, dims] before it crosses', async () => {
    await expect(ThreadedItemScorer.create(thread, new Float32Array(10), 3)).rejects.toThrow(ValidationError);
  });
});

describe('InferenceThread', () => {
  it('fails the calls made after close with a BackendError, and engines opened on it', async () => {
    const own = new InferenceThread();
    const encoder = await ThreadedUserEncoder.create(own, built.bytes, built.settings);
    await own.close();
    await expect(encoder.encode(batchOf([[1]]))).rejects.toThrow(BackendError);
    await expect(ThreadedItemScorer.create(own, new Float32Array(8), 4)).rejects.toThrow(/used after close/);
    await encoder.dispose(); // nothing to free any more: no error
  });
});
