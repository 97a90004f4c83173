import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ArtifactError } from '../errors';
import { ArtifactStore, jsonFile } from '../infra/artifacts';
import { initTf, tf } from '../infra/tf';
import { Random } from '../random';
import { loadCheckpoint, saveCheckpoint, type CheckpointMeta } from './checkpoint';
import { makeBatch } from './data';
import { createModel } from './models';
import type { SequentialRecommender } from './models/contract';
import { AdamW } from './optimizer';
import type { ItemSideInfo } from './sideInfo';
import { TINY, tinyConfig, tinyData, tinySideInfo } from './testing/fixtures';
import { trainStep } from './trainStep';

let root: string;
let store: ArtifactStore;

beforeAll(async () => {
  await initTf();
  root = await mkdtemp(path.join(tmpdir(), 'streamrec-ckpt-'));
  store = new ArtifactStore(root);
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const data = tinyData();
const sideInfo = tinySideInfo();
const batch = makeBatch(data.valid, Int32Array.from({ length: 12 }, (_, i) => i), 5);

function meta(info?: ItemSideInfo): CheckpointMeta {
  return {
    ...(info ? { sideInfo: info } : {}),
    dataWatermark: { dataset: 'tiny', protocol: data.protocol, latestEventMs: data.watermarkMs, trainExamples: data.train.count },
    backend: 'tensorflow',
    runId: 'run-test',
    epoch: 3,
    metrics: { valid: { 'ndcg@10': 0.25 } },
  };
}

/** A model trained for a couple of steps (so its weights are not the init). */
function trainedModel(type: 'ccfrec' | 'sasrec'): SequentialRecommender {
  const model = createModel(tinyConfig(type).model, { itemCount: TINY.items, sideInfo }, new Random(1));
  const optimizer = new AdamW(model.weights, { learningRate: 1e-2, warmupSteps: 0, schedule: 'constant', totalSteps: 2, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 1e-4, weightDecayOn: 'all' });
  const rng = new Random(2);
  for (let s = 0; s < 2; s++) trainStep(model, optimizer, makeBatch(data.train, Int32Array.from({ length: 16 }, (_, i) => s * 16 + i), 5), rng);
  optimizer.dispose();
  return model;
}

function scores(model: SequentialRecommender): number[] {
  return tf.tidy(() => Array.from(model.scoreAllItems(batch).dataSync()));
}

describe.each(['sasrec', 'ccfrec'] as const)('%s checkpoint', (type) => {
  it('round-trips: the loaded model reproduces the saved model\'s scores exactly', async () => {
    const model = trainedModel(type);
    const artifact = await saveCheckpoint(store, model, meta(sideInfo));
    expect(artifact.manifest.kind).toBe('checkpoint');
    expect(artifact.manifest.settings).toMatchObject({ modelType: type, model: { ...model.config }, itemCount: TINY.items, backend: 'tensorflow', runId: 'run-test', epoch: 3 });
    expect(artifact.manifest.metrics).toEqual({ valid: { 'ndcg@10': 0.25 } });
    const roles = artifact.manifest.inputs.map((i) => i.role).sort();
    expect(roles).toEqual(type === 'ccfrec' ? ['dataset', 'embeddings:meta', 'semantic_ids'] : ['dataset']);
    const loaded = await loadCheckpoint(store, artifact.id, { sideInfo, modelType: type, itemCount: TINY.items });
    expect(loaded.model.modelType).toBe(type);
    expect(scores(loaded.model)).toEqual(scores(model));
    // By directory too.
    const again = await loadCheckpoint(store, artifact.dir, { sideInfo });
    expect(scores(again.model)).toEqual(scores(model));
    for (const m of [model, loaded.model, again.model]) m.dispose();
  });
});

describe('checkpoints written before the text prior had a pooling', () => {
  it('load with the mean pooling they were trained and tuned with', async () => {
    const config = { ...tinyConfig('ccfrec').model, textPriorWeight: 0.5, textPriorLastItems: 2, textPriorPooling: 'mean' as const };
    const model = createModel(config, { itemCount: TINY.items, sideInfo }, new Random(1));
    const artifact = await saveCheckpoint(store, model, { ...meta(sideInfo), textPrior: { weight: 0.3, lastItems: 5, pooling: 'mean' } });
    // What an older version wrote: no pooling anywhere.
    const manifestFile = path.join(artifact.dir, 'manifest.json');
    const manifest = JSON.parse(await readFile(manifestFile, 'utf8'));
    delete manifest.settings.model.textPriorPooling;
    delete manifest.settings.textPrior.pooling;
    await writeFile(manifestFile, JSON.stringify(manifest));
    const loaded = await loadCheckpoint(store, artifact.id, { sideInfo });
    expect(loaded.settings.textPrior).toEqual({ weight: 0.3, lastItems: 5, pooling: 'mean' });
    expect((loaded.model.config as typeof config).textPriorPooling).toBe('mean');
    expect(scores(loaded.model)).toEqual(scores(model));
    loaded.model.dispose();
    model.dispose();
  });
});

describe('rejected checkpoints', () => {
  let ccfrecId: string;
  let sasrecId: string;

  beforeAll(async () => {
    const c = trainedModel('ccfrec');
    const s = trainedModel('sasrec');
    ccfrecId = (await saveCheckpoint(store, c, meta(sideInfo))).id;
    sasrecId = (await saveCheckpoint(store, s, meta())).id;
    c.dispose();
    s.dispose();
  });

  it('a different model type, item count or side information, naming what differs', async () => {
    await expect(loadCheckpoint(store, sasrecId, { modelType: 'ccfrec' })).rejects.toThrow(/holds a sasrec model, a ccfrec model was asked for/);
    await expect(loadCheckpoint(store, sasrecId, { itemCount: 31 })).rejects.toThrow(/trained for itemCount 30, the data has 31/);
    await expect(loadCheckpoint(store, ccfrecId, {})).rejects.toThrow(/needs the side information/);
    const otherCodes = tinySideInfo(99);
    await expect(loadCheckpoint(store, ccfrecId, { sideInfo: otherCodes })).rejects.toThrow(/side information does not match the checkpoint: semantic IDs differ \(sha256 [0-9a-f]{12} vs [0-9a-f]{12}: new codebooks\?/);
    const otherText: ItemSideInfo = { ...sideInfo, textFields: [{ ...sideInfo.textFields[0]!, table: sideInfo.textFields[0]!.table.map((v) => v * 2) }] };
    await expect(loadCheckpoint(store, ccfrecId, { sideInfo: otherText })).rejects.toThrow(/text field meta: table differs/);
    await expect(loadCheckpoint(store, ccfrecId, { sideInfo: otherCodes })).rejects.toBeInstanceOf(ArtifactError);
  });

  it('a grown catalog that changed the trained items, a shrunk one, other codebook shapes, and new items for SASRec', async () => {
    const grown = (info: ItemSideInfo, extra: number): ItemSideInfo => {
      const more = tinySideInfo(7, { ...TINY, items: TINY.items + extra });
      const rows = (TINY.items + 1) * TINY.levels;
      const codes = Int32Array.from(more.codes.table);
      codes.set(info.codes.table.subarray(0, rows));
      const textFields = more.textFields.map((f, i) => {
        const table = Float32Array.from(f.table);
        table.set(info.textFields[i]!.table);
        return { ...f, table };
      });
      return { ...more, codes: { ...more.codes, table: codes }, textFields };
    };
    const ok = grown(sideInfo, 4);
    const loaded = await loadCheckpoint(store, ccfrecId, { sideInfo: ok, itemCount: TINY.items + 4 });
    expect(loaded.appendedItems).toBe(4);
    expect(loaded.model.itemCount).toBe(TINY.items + 4);
    loaded.model.dispose();
    // An old item's text changed on the way.
    const changed = grown(sideInfo, 4);
    changed.textFields[0]!.table[5 * TINY.dims] = 42;
    await expect(loadCheckpoint(store, ccfrecId, { sideInfo: changed })).rejects.toThrow(/text field meta of the first 30 items: table differs/);
    const recoded = grown(sideInfo, 4);
    (recoded.codes.table as Int32Array)[3 * TINY.levels] = (recoded.codes.table[3 * TINY.levels]! + 1) % TINY.codesPerLevel;
    await expect(loadCheckpoint(store, ccfrecId, { sideInfo: recoded })).rejects.toThrow(/semantic IDs of the first 30 items differ/);
    await expect(loadCheckpoint(store, ccfrecId, { sideInfo: tinySideInfo(1, { ...TINY, items: 20 }) })).rejects.toThrow(/itemCount: checkpoint 30, given 20 \(a catalog never shrinks/);
    await expect(loadCheckpoint(store, ccfrecId, { sideInfo: tinySideInfo(1, { ...TINY, codesPerLevel: 16 }) })).rejects.toThrow(/codesPerLevel: checkpoint 8, given 16/);
    await expect(loadCheckpoint(store, sasrecId, { itemCount: 34 })).rejects.toThrow(/SASRec learns one embedding per item, so new items need a retrained model/);
  });

  it('a corrupt or truncated weight file', async () => {
    const model = trainedModel('sasrec');
    const artifact = await saveCheckpoint(store, model, { ...meta(), runId: 'run-corrupt' });
    model.dispose();
    const file = path.join(artifact.dir, 'itemEmbedding.npy');
    const bytes = await readFile(file);
    bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 0xff;
    await writeFile(file, bytes);
    await expect(loadCheckpoint(store, artifact.id)).rejects.toThrow(/itemEmbedding\.npy does not match its sha256 \(corrupt\)/);
    await writeFile(file, bytes.subarray(0, 100));
    await expect(loadCheckpoint(store, artifact.id)).rejects.toThrow(/itemEmbedding\.npy has 100 bytes, manifest says/);
    // The failed loads leave no tensors behind.
    const before = tf.memory().numTensors;
    await expect(loadCheckpoint(store, artifact.id)).rejects.toThrow(ArtifactError);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('weights that do not fit the recorded config, and artifacts that are not checkpoints', async () => {
    const model = trainedModel('sasrec');
    const artifact = await saveCheckpoint(store, model, { ...meta(), runId: 'run-edited' });
    model.dispose();
    const manifestFile = path.join(artifact.dir, 'manifest.json');
    const manifest = JSON.parse(await readFile(manifestFile, 'utf8'));
    manifest.settings.model.nLayers = 2;
    await writeFile(manifestFile, JSON.stringify(manifest));
    await expect(loadCheckpoint(store, artifact.id)).rejects.toThrow(/weights do not match a sasrec model: missing encoder\.transformer\.layers\.1\./);
    manifest.settings.format = 7;
    await writeFile(manifestFile, JSON.stringify(manifest));
    await expect(loadCheckpoint(store, artifact.id)).rejects.toThrow(/settings are invalid at format/);
    const other = await store.write({ kind: 'semantic_ids', job: 'test', settings: {}, inputs: [], files: [jsonFile('x.json', {})] });
    await expect(loadCheckpoint(store, other.dir)).rejects.toThrow(/is a semantic_ids artifact, not a checkpoint/);
  });
});

describe('checkpoints that continue a run (optimizer and generator state)', () => {
  const settings = { learningRate: 1e-2, warmupSteps: 3, schedule: 'constant' as const, totalSteps: 8, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 1e-4, weightDecayOn: 'all' as const };
  const stepBatch = (s: number) => makeBatch(data.train, Int32Array.from({ length: 16 }, (_, i) => (s * 16 + i) % data.train.count), 5);

  it.each(['sasrec', 'ccfrec'] as const)('%s: 3 steps, save, load, 3 more steps = 6 steps uninterrupted (same weights, schedule position and draws)', async (type) => {
    const fresh = () => createModel(tinyConfig(type).model, { itemCount: TINY.items, sideInfo }, new Random(1));
    // Uninterrupted: 6 steps (warm-up 3, so a restarted warm-up would show).
    const straight = fresh();
    const optimizer = new AdamW(straight.weights, settings);
    const rng = new Random(9);
    for (let s = 0; s < 6; s++) trainStep(straight, optimizer, stepBatch(s), rng);
    optimizer.dispose();

    // Interrupted after 3 steps by a checkpoint.
    const first = fresh();
    const before = new AdamW(first.weights, settings);
    const rngBefore = new Random(9);
    for (let s = 0; s < 3; s++) trainStep(first, before, stepBatch(s), rngBefore);
    const artifact = await saveCheckpoint(store, first, { ...meta(type === 'ccfrec' ? sideInfo : undefined), runId: `run-continue-${type}`, trainingState: { optimizer: before.state(), rng: rngBefore.state() } });
    before.dispose();
    first.dispose();
    const loaded = await loadCheckpoint(store, artifact.id, { ...(type === 'ccfrec' ? { sideInfo } : {}), withTrainingState: true });
    expect(loaded.trainingState?.optimizer?.step).toBe(3);
    const after = new AdamW(loaded.model.weights, settings);
    after.restore(loaded.trainingState!.optimizer!);
    expect(after.currentLearningRate).toBe(settings.learningRate); // past the warm-up
    const rngAfter = Random.restore(loaded.trainingState!.rng!);
    for (let s = 3; s < 6; s++) trainStep(loaded.model, after, stepBatch(s), rngAfter);
    after.dispose();

    const a = straight.getWeights();
    const b = loaded.model.getWeights();
    for (const [name, w] of a) expect(Array.from(b.get(name)!.values)).toEqual(Array.from(w.values));
    // Without the state (a restart from the weights alone) the run differs.
    const plain = await loadCheckpoint(store, artifact.id, type === 'ccfrec' ? { sideInfo } : {});
    expect(plain.trainingState).toBeUndefined();
    const restarted = new AdamW(plain.model.weights, settings);
    const rngRestarted = new Random(9);
    for (let s = 3; s < 6; s++) trainStep(plain.model, restarted, stepBatch(s), rngRestarted);
    restarted.dispose();
    const c = plain.model.getWeights();
    expect([...a].some(([name, w]) => w.values.some((v, i) => v !== c.get(name)!.values[i]))).toBe(true);
    for (const m of [straight, loaded.model, plain.model]) m.dispose();
  });

  it('refuses optimizer state that does not fit the model, naming the weight', async () => {
    const model = trainedModel('sasrec');
    const optimizer = new AdamW(model.weights, settings);
    const state = optimizer.state();
    const [name, moments] = [...state.moments][0]!;
    const wrong = new Map(state.moments);
    wrong.set(name, { m: { shape: [1], values: new Float32Array(1) }, v: moments.v });
    expect(() => optimizer.restore({ step: 2, moments: wrong })).toThrow(new RegExp(`m of ${name.replace(/\./g, '\\.')} has shape \\[1\\]`));
    const missing = new Map(state.moments);
    missing.delete(name);
    expect(() => optimizer.restore({ step: 2, moments: missing })).toThrow(/no moments for weight/);
    expect(() => optimizer.restore({ step: -1, moments: state.moments })).toThrow(/step must be a non-negative integer/);
    // A moment file that is not what the manifest says is a load error.
    const artifact = await saveCheckpoint(store, model, { ...meta(), runId: 'run-bad-moments', trainingState: { optimizer: state } });
    const manifestFile = path.join(artifact.dir, 'manifest.json');
    const manifest = JSON.parse(await readFile(manifestFile, 'utf8'));
    manifest.settings.trainingState.moments[0].shape = [3, 3];
    await writeFile(manifestFile, JSON.stringify(manifest));
    await expect(loadCheckpoint(store, artifact.id, { withTrainingState: true })).rejects.toThrow(/first moment of .* is float32 \[.*\], the manifest says float32 \[3, 3\]/);
    optimizer.dispose();
    model.dispose();
  });
});
