/**
 * @jest-environment ./features/testing/nativeTypedArraysEnvironment.ts
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { onnx } from 'onnx-proto';
import { ArtifactError, ConfigError, ValidationError } from '../../errors';
import { ArtifactStore } from '../../infra/artifacts';
import { initTf } from '../../infra/tf';
import { loadCheckpoint, saveCheckpoint } from '../../trainer';
import { CONTRIB_DOMAIN, ENCODER_GRAPH_VERSION, ENCODER_INPUT, ENCODER_IR_VERSION, ENCODER_OPSET, ENCODER_OUTPUT, ENCODER_TOKEN_TABLE } from './encoderGraph';
import { buildOnnxEncoder, findOnnxEncoder, maxAbsDiff, probeBatch, writeOnnxEncoder } from './exportEncoder';
import { ONNX_ENCODER_FILE, ONNX_TOKEN_TABLE_FILE, OnnxEncoderSettings, readOnnxEncoder } from './manifest';
import { OnnxUserEncoder } from './onnxUserEncoder';
import { openUserEncoder } from './openUserEncoder';
import { L, SIZES, batchOf, trainedModel, type TrainedFixture } from './testing/fixtures';
import { TfjsUserEncoder } from './tfjsUserEncoder';

let root: string;
let store: ArtifactStore;
let sasrec: TrainedFixture;
let ccfrec: TrainedFixture;

beforeAll(async () => {
  await initTf();
  root = await mkdtemp(path.join(tmpdir(), 'streamrec-onnx-'));
  store = new ArtifactStore(root);
  sasrec = trainedModel('sasrec');
  ccfrec = trainedModel('ccfrec');
});

afterAll(async () => {
  sasrec.model.dispose();
  ccfrec.model.dispose();
  await rm(root, { recursive: true, force: true });
});

const H = SIZES.dims;
const history = batchOf([[1], [4, 5, 6], [10, 20, 30, 40, 50]]);

describe('the exported graph', () => {
  it('is a ModelProto of opset 17 / IR 8 (and ONNX Runtime contrib ops 1) whose declared input and output are those of its manifest', () => {
    const built = buildOnnxEncoder({ model: ccfrec.model, checkpointId: 'checkpoint-00000000000000cc', sideInfo: ccfrec.sideInfo });
    const decoded = onnx.ModelProto.decode(built.bytes);
    expect(Number(decoded.irVersion)).toBe(ENCODER_IR_VERSION);
    expect(decoded.opsetImport.map((o) => [o.domain, Number(o.version)])).toEqual([
      ['', ENCODER_OPSET],
      [CONTRIB_DOMAIN, 1],
    ]);
    const graph = decoded.graph as onnx.GraphProto;
    const dims = (v: onnx.IValueInfoProto): Array<string | number> => (v.type?.tensorType?.shape?.dim ?? []).map((d) => d.dimParam || Number(d.dimValue));
    expect(graph.input.map((v) => [v.name, v.type?.tensorType?.elemType, dims(v)])).toEqual([[ENCODER_INPUT, onnx.TensorProto.DataType.INT32, ['batch', 'sequence']]]);
    expect(graph.output.map((v) => [v.name, v.type?.tensorType?.elemType, dims(v)])).toEqual([[ENCODER_OUTPUT, onnx.TensorProto.DataType.FLOAT, ['batch', H]]]);
    expect(built.settings.inputs[0]).toMatchObject({ name: ENCODER_INPUT, dtype: 'int32', shape: ['batch', 'sequence'] });
    expect(built.settings.outputs[0]).toMatchObject({ name: ENCODER_OUTPUT, dtype: 'float32', shape: ['batch', H] });
    // The ops the design names, no Gelu op (opset 20), and one fused Attention per layer the only contrib ops.
    const ops = new Set(graph.node.map((n) => n.opType));
    for (const op of ['Gather', 'LayerNormalization', 'Erf', 'Attention', 'GatherND']) expect(ops.has(op)).toBe(true);
    expect(ops.has('Gelu')).toBe(false);
    expect(graph.node.filter((n) => n.domain).map((n) => [n.domain, n.opType])).toEqual(Array.from({ length: ccfrec.model.config.nLayers }, () => [CONTRIB_DOMAIN, 'Attention']));
    // The token table is the model's tokenTable(), byte for byte.
    const table = graph.initializer.find((t) => t.name === ENCODER_TOKEN_TABLE) as onnx.TensorProto;
    expect(table.dims.map(Number)).toEqual([SIZES.items + 1, H]);
    const tokens = ccfrec.model.tokenTable();
    expect(new Float32Array(Uint8Array.from(table.rawData).buffer)).toEqual(Float32Array.from(tokens.dataSync() as Float32Array));
    tokens.dispose();
  });

  it('needs the side information of a CCFRec model (the token table provenance)', () => {
    expect(() => buildOnnxEncoder({ model: ccfrec.model, checkpointId: 'checkpoint-00000000000000cc' })).toThrow(ValidationError);
    expect(() => buildOnnxEncoder({ model: ccfrec.model, checkpointId: 'checkpoint-00000000000000cc', sideInfo: { ...ccfrec.sideInfo, itemCount: 7 } })).toThrow(
      /the side information covers 7 items, the model scores 120/,
    );
  });
});

describe('onnx_encoder artifacts', () => {
  it('are written with their manifest and lineage, found for the same checkpoint and catalog only, and reopen to the same vectors', async () => {
    const source = { model: ccfrec.model, checkpointId: 'checkpoint-00000000000000cc', sideInfo: ccfrec.sideInfo };
    const artifact = await writeOnnxEncoder(store, source);
    expect(artifact.manifest.kind).toBe('onnx_encoder');
    const settings = OnnxEncoderSettings.parse(artifact.manifest.settings);
    expect(settings).toMatchObject({
      checkpointId: source.checkpointId,
      modelType: 'ccfrec',
      opset: 17,
      tokenTable: { source: 'ccfrec.qformerCodeMean', rows: SIZES.items + 1, dims: H, semanticIds: 'semantic_ids-0123456789abcdef', textEmbeddings: { meta: 'embeddings-0123456789abcdef' } },
      encoder: { itemCount: SIZES.items, hiddenSize: H, nLayers: 2, nHeads: 2, maxHistoryLength: L },
    });
    expect(artifact.manifest.inputs.map((i) => i.role)).toEqual(['checkpoint', 'semantic_ids', 'embeddings:meta']);
    const probe = (artifact.manifest.metrics as { probe: { rows: number; maxAbsDiffVsTfjs: number } }).probe;
    expect(probe.rows).toBe(64);
    expect(probe.maxAbsDiffVsTfjs).toBeLessThan(1e-4);

    expect(await findOnnxEncoder(store, source)).toBe(artifact.id);
    expect(await findOnnxEncoder(store, { ...source, checkpointId: 'checkpoint-00000000000000dd' })).toBeUndefined();
    const otherCatalog = { ...ccfrec.sideInfo, artifactIds: { ...ccfrec.sideInfo.artifactIds, semanticIds: 'semantic_ids-fedcba9876543210' } };
    expect(await findOnnxEncoder(store, { ...source, sideInfo: otherCatalog })).toBeUndefined();
    // An encoder in an older graph layout (no `graph` in its settings) still opens, but is not
    // found: a server exports the checkpoint again in this layout, even when the old one is newer.
    expect(settings.graph).toBe(ENCODER_GRAPH_VERSION);
    const built = buildOnnxEncoder(source);
    const { graph: _layout, ...layoutOne } = built.settings;
    const older = await store.write({ kind: 'onnx_encoder', job: 'test', settings: layoutOne, inputs: built.inputs, files: [{ name: 'encoder.onnx', data: Buffer.from(built.bytes), dtype: 'binary', description: 'graph' }] });
    expect(older.id).not.toBe(artifact.id);
    expect((await readOnnxEncoder(store, older.id)).settings.graph).toBeUndefined();
    expect(await findOnnxEncoder(store, source)).toBe(artifact.id);

    const engine = await OnnxUserEncoder.open(store, artifact.id, { threads: 1 });
    const batchVectors = await engine.encode(history);
    expect(maxAbsDiff(batchVectors, await new TfjsUserEncoder(ccfrec.model).encode(history))).toBeLessThan(1e-4);
    // One history (run on its row of the batch as it is, the output returned as it comes): the
    // same vector as in a batch, at any padded width.
    for (const [row, ids] of [[0, [1]], [1, [4, 5, 6]], [2, [10, 20, 30, 40, 50]]] as const) {
      const alone = await engine.encode(batchOf([[...ids]]));
      expect(alone).toHaveLength(H);
      expect(maxAbsDiff(alone, batchVectors.subarray(row * H, (row + 1) * H))).toBeLessThan(1e-6);
    }
    await engine.dispose();
    await expect(engine.encode(history)).rejects.toThrow(/encode after dispose/);
  });

  it('keep the token table beside the graph as ONNX external data, opened from the path with the vectors of the self-contained graph', async () => {
    const source = { model: ccfrec.model, checkpointId: 'checkpoint-000000000000ccee', sideInfo: ccfrec.sideInfo };
    const artifact = await writeOnnxEncoder(store, source);
    const stored = await readOnnxEncoder(store, artifact.id);
    expect(stored.settings.tokenTable.file).toBe(ONNX_TOKEN_TABLE_FILE);
    expect(stored.model).toBe(path.join(artifact.dir, ONNX_ENCODER_FILE));
    expect(artifact.manifest.files.map((f) => [f.name, f.bytes])).toEqual([
      [ONNX_ENCODER_FILE, stored.bytes.length],
      [ONNX_TOKEN_TABLE_FILE, (SIZES.items + 1) * H * 4],
    ]);
    // The graph's initializer points at the file, whose bytes are the table the self-contained graph holds.
    const table = (onnx.ModelProto.decode(stored.bytes).graph as onnx.GraphProto).initializer.find((t) => t.name === ENCODER_TOKEN_TABLE) as onnx.TensorProto;
    expect(table.dataLocation).toBe(onnx.TensorProto.DataLocation.EXTERNAL);
    expect(table.rawData).toHaveLength(0);
    expect(table.externalData.map((e) => [e.key, e.value])).toEqual([
      ['location', ONNX_TOKEN_TABLE_FILE],
      ['offset', '0'],
      ['length', String((SIZES.items + 1) * H * 4)],
    ]);
    const whole = buildOnnxEncoder(source);
    const embedded = (onnx.ModelProto.decode(whole.bytes).graph as onnx.GraphProto).initializer.find((t) => t.name === ENCODER_TOKEN_TABLE) as onnx.TensorProto;
    expect(Buffer.compare(await readFile(path.join(artifact.dir, ONNX_TOKEN_TABLE_FILE)), Buffer.from(embedded.rawData))).toBe(0);
    const fromPath = await OnnxUserEncoder.open(store, artifact.id, { threads: 1 });
    const fromBytes = await OnnxUserEncoder.create(whole.bytes, whole.settings, { threads: 1 });
    const vectors = Array.from(await fromPath.encode(history));
    expect(vectors).toEqual(Array.from(await fromBytes.encode(history)));
    await fromPath.dispose();
    await fromBytes.dispose();

    // A table changed in place (same size) or cut short is refused before a session maps it.
    const file = path.join(artifact.dir, ONNX_TOKEN_TABLE_FILE);
    const good = await readFile(file);
    const changed = Buffer.from(good);
    changed.writeFloatLE(changed.readFloatLE(H * 4) + 1, H * 4);
    await writeFile(file, changed);
    await expect(OnnxUserEncoder.open(store, artifact.id)).rejects.toThrow(`${ONNX_TOKEN_TABLE_FILE} does not match its sha256 (corrupt)`);
    await writeFile(file, good.subarray(0, 100));
    await expect(OnnxUserEncoder.open(store, artifact.id)).rejects.toThrow(`${ONNX_TOKEN_TABLE_FILE} has 100 bytes, manifest says ${good.length}`);
    await writeFile(file, good);

    // An encoder stored with the table inside its graph (before external data) opens from its bytes.
    const { file: _external, ...inside } = whole.settings.tokenTable;
    const older = await store.write({ kind: 'onnx_encoder', job: 'test', settings: { ...whole.settings, tokenTable: inside }, inputs: whole.inputs, files: [{ name: ONNX_ENCODER_FILE, data: Buffer.from(whole.bytes), dtype: 'binary', description: 'graph' }] });
    const olderStored = await readOnnxEncoder(store, older.id);
    expect(olderStored.model).toBe(olderStored.bytes);
    const olderEngine = await OnnxUserEncoder.open(store, older.id, { threads: 1 });
    expect(Array.from(await olderEngine.encode(history))).toEqual(vectors);
    await olderEngine.dispose();
  });

  it('refuse a corrupt graph file and a manifest of another kind', async () => {
    const artifact = await writeOnnxEncoder(store, { model: sasrec.model, checkpointId: 'checkpoint-00000000000000aa' });
    expect((await readOnnxEncoder(store, artifact.id)).settings.tokenTable.source).toBe('sasrec.itemEmbedding');
    await writeFile(path.join(artifact.dir, 'encoder.onnx'), Buffer.from('not a graph'));
    await expect(OnnxUserEncoder.open(store, artifact.id)).rejects.toThrow(ArtifactError);
    await expect(OnnxUserEncoder.open(store, artifact.id)).rejects.toThrow(/encoder\.onnx has 11 bytes, manifest says/);
    const checkpoint = await saveCheckpoint(store, sasrec.model, {
      dataWatermark: { dataset: 'tiny', protocol: 'p', latestEventMs: 0, trainExamples: 1 },
      backend: 'tensorflow',
      runId: 'run-onnx',
      epoch: 0,
    });
    await expect(readOnnxEncoder(store, checkpoint.dir)).rejects.toThrow(/is a checkpoint, not an onnx_encoder/);
  });

  it('export a checkpoint as loaded from the store: same vectors as the model that was saved', async () => {
    const saved = await saveCheckpoint(store, sasrec.model, {
      dataWatermark: { dataset: 'tiny', protocol: 'p', latestEventMs: 0, trainExamples: 1 },
      backend: 'tensorflow',
      runId: 'run-onnx-2',
      epoch: 1,
    });
    const loaded = await loadCheckpoint(store, saved.id);
    try {
      const artifact = await writeOnnxEncoder(store, { model: loaded.model, checkpointId: loaded.artifact.id });
      expect(artifact.manifest.inputs[0]).toMatchObject({ role: 'checkpoint', artifactId: saved.id });
      const engine = await OnnxUserEncoder.open(store, artifact.id);
      expect(maxAbsDiff(await engine.encode(probeBatch(SIZES.items, L)), await new TfjsUserEncoder(sasrec.model).encode(probeBatch(SIZES.items, L)))).toBeLessThan(1e-4);
      await engine.dispose();
    } finally {
      loaded.model.dispose();
    }
  });
});

describe('openUserEncoder', () => {
  it('auto runs ONNX, exporting the graph once per checkpoint and catalog; tfjs runs the model; onnx needs a store', async () => {
    const own = new ArtifactStore(path.join(root, 'serve'));
    const source = { model: sasrec.model, checkpointId: 'checkpoint-00000000000000ee' };
    const first = await openUserEncoder(source, { store: own, threads: 1 });
    expect(first.kind).toBe('onnx');
    const second = await openUserEncoder(source, { engine: 'onnx', store: own });
    expect(await own.list('onnx_encoder')).toHaveLength(1);
    expect(Array.from(await second.encode(history))).toEqual(Array.from(await first.encode(history)));
    await first.dispose();
    await second.dispose();
    const tfjs = await openUserEncoder(source, { engine: 'tfjs' });
    expect(tfjs.kind).toBe('tfjs');
    await expect(openUserEncoder(source, { engine: 'onnx' })).rejects.toThrow(ConfigError);
  });
});
