import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ArtifactError, ValidationError } from '../../errors';
import { sha256, stableStringify, type ArtifactStore, type LoadedArtifact } from '../../infra/artifacts';
import { tf } from '../../infra/tf';
import { Random } from '../../random';
import type { ArtifactInput } from '../../schemas/artifacts';
import { MASKED_SCORE, type ItemSideInfo, type SequenceBatch, type SequentialRecommender } from '../../trainer';
import { STREAMREC_VERSION } from '../../version';
import { ENCODER_GRAPH_VERSION, ENCODER_INPUT, ENCODER_IR_VERSION, ENCODER_OPSET, ENCODER_OUTPUT, ENCODER_TOKEN_TABLE, buildEncoderGraph, type EncoderGraphShape } from './encoderGraph';
import { ONNX_ENCODER_FILE, ONNX_ENCODER_FORMAT, ONNX_TOKEN_TABLE_FILE, OnnxEncoderSettings } from './manifest';
import { OnnxUserEncoder } from './onnxUserEncoder';
import { TfjsUserEncoder } from './tfjsUserEncoder';

/**
 * Exports the user-vector side of a loaded model to ONNX: `buildOnnxEncoder` makes the ModelProto
 * and its manifest settings, `writeOnnxEncoder` checks it against the TF.js engine on a probe
 * batch and stores it as an `onnx_encoder` artifact, `findOnnxEncoder` finds a stored one for a
 * model and catalog.
 */

/**
 * What an export reads: the model, the checkpoint it was loaded from, and (CCFRec) the side
 * information of the catalog it scores, whose artifact ids are the token table's provenance. A
 * ServableModel (jobs/servable.ts) is one.
 */
export interface EncoderSource {
  readonly model: SequentialRecommender;
  readonly checkpointId: string;
  readonly sideInfo?: ItemSideInfo;
}

export interface OnnxEncoderBuild {
  /** The encoded ModelProto (without its token table when that is {@link tokenTable}). */
  readonly bytes: Uint8Array;
  /**
   * With `externalTokenTable`: the token table's rows, the graph's external data, to be stored as
   * `settings.tokenTable.file` beside the graph (a session opens from the graph's path).
   */
  readonly tokenTable?: Uint8Array;
  readonly settings: OnnxEncoderSettings;
  /** Lineage for the artifact manifest: the checkpoint and (CCFRec) the catalog's artifacts. */
  readonly inputs: ArtifactInput[];
}

function catalogOf(source: EncoderSource): Pick<OnnxEncoderSettings['tokenTable'], 'semanticIds' | 'textEmbeddings' | 'pca'> {
  const { model, sideInfo } = source;
  if (model.modelType !== 'ccfrec') return {};
  if (!sideInfo) {
    throw new ValidationError(`onnx export of checkpoint ${source.checkpointId}: a CCFRec model needs the side information it scores with (its artifact ids are the token table's provenance)`);
  }
  if (sideInfo.itemCount !== model.itemCount) {
    throw new ValidationError(`onnx export of checkpoint ${source.checkpointId}: the side information covers ${sideInfo.itemCount} items, the model scores ${model.itemCount}`);
  }
  const ids = sideInfo.artifactIds;
  return { ...(ids.semanticIds ? { semanticIds: ids.semanticIds } : {}), ...(ids.textEmbeddings ? { textEmbeddings: { ...ids.textEmbeddings } } : {}), ...(ids.pca ? { pca: ids.pca } : {}) };
}

export interface BuildOnnxEncoderOptions {
  /**
   * Store the token table (`[N + 1, H]`: 26 MB at 100,000 items) outside the graph, as ONNX
   * external data (what {@link writeOnnxEncoder} stores); default false: one self-contained
   * ModelProto.
   */
  readonly externalTokenTable?: boolean;
}

/** The graph and manifest settings of `source`'s user encoder (host copies of the weights; nothing is written). */
export function buildOnnxEncoder(source: EncoderSource, options: BuildOnnxEncoderOptions = {}): OnnxEncoderBuild {
  const { model } = source;
  const cfg = model.config;
  const shape: EncoderGraphShape = {
    itemCount: model.itemCount,
    hiddenSize: model.hiddenSize,
    nHeads: cfg.nHeads,
    nLayers: cfg.nLayers,
    innerSize: cfg.innerSize,
    layerNormEps: cfg.layerNormEps,
    maxHistoryLength: cfg.maxHistoryLength,
  };
  const catalog = catalogOf(source);
  const table = model.tokenTable(); // [N + 1, H]
  let tokens: Float32Array;
  try {
    tokens = Float32Array.from(table.dataSync() as Float32Array);
  } finally {
    table.dispose();
  }
  const tokenSha = sha256(Buffer.from(tokens.buffer, tokens.byteOffset, tokens.byteLength));
  const graph = buildEncoderGraph(shape, model.getWeights(), tokens);
  const L = shape.maxHistoryLength;
  const H = shape.hiddenSize;
  const settings: OnnxEncoderSettings = {
    format: ONNX_ENCODER_FORMAT,
    checkpointId: source.checkpointId,
    graph: ENCODER_GRAPH_VERSION,
    modelType: model.modelType,
    opset: ENCODER_OPSET,
    irVersion: ENCODER_IR_VERSION,
    file: ONNX_ENCODER_FILE,
    inputs: [
      {
        name: ENCODER_INPUT,
        dtype: 'int32',
        shape: ['batch', 'sequence'],
        description: `histories as dense item ids 1..${shape.itemCount}, left-aligned, 0 = padding, sequence <= ${L}; row length = its count of non-zero ids (>= 1)`,
      },
    ],
    outputs: [{ name: ENCODER_OUTPUT, dtype: 'float32', shape: ['batch', H], description: 'L2-normalised user vectors: score items by inner product with the model item table' }],
    encoder: shape,
    ops: { layerNorm: 'LayerNormalization', gelu: 'erf', maskScore: MASKED_SCORE },
    tokenTable: {
      source: model.modelType === 'ccfrec' ? 'ccfrec.qformerCodeMean' : 'sasrec.itemEmbedding',
      rows: shape.itemCount + 1,
      dims: H,
      sha256: tokenSha,
      ...(options.externalTokenTable ? { file: ONNX_TOKEN_TABLE_FILE } : {}),
      ...catalog,
    },
  };
  const meta = {
    graphName: `streamrec_${model.modelType}_user_encoder`,
    opset: ENCODER_OPSET,
    irVersion: ENCODER_IR_VERSION,
    producer: 'streamrec serving/onnx',
    producerVersion: STREAMREC_VERSION,
    docString: `User encoder of checkpoint ${source.checkpointId} (${model.modelType}): ${ENCODER_INPUT} [batch, ${L}] -> ${ENCODER_OUTPUT} [batch, ${H}]`,
    metadata: { checkpoint_id: source.checkpointId, model_type: model.modelType, token_table_sha256: tokenSha },
  };
  let bytes: Uint8Array;
  let tokenTable: Uint8Array | undefined;
  if (options.externalTokenTable) {
    const encoded = graph.encodeWithExternalData(meta, { [ENCODER_TOKEN_TABLE]: ONNX_TOKEN_TABLE_FILE });
    bytes = encoded.model;
    tokenTable = encoded.files[0]?.data;
  } else {
    bytes = graph.encode(meta);
  }
  const inputs: ArtifactInput[] = [
    { role: 'checkpoint', hash: source.checkpointId, artifactId: source.checkpointId, description: 'the weights the graph holds' },
    ...(catalog.semanticIds ? [{ role: 'semantic_ids', hash: catalog.semanticIds, artifactId: catalog.semanticIds }] : []),
    ...Object.entries(catalog.textEmbeddings ?? {}).map(([field, id]) => ({ role: `embeddings:${field}`, hash: id, artifactId: id })),
    ...(catalog.pca ? [{ role: 'pca', hash: catalog.pca, artifactId: catalog.pca }] : []),
  ];
  return { bytes, ...(tokenTable ? { tokenTable } : {}), settings: OnnxEncoderSettings.parse(settings), inputs };
}

/**
 * A fixed probe batch over the whole catalog: `rows` histories of every length 1..L in turn, ids
 * drawn from a seeded generator (the same probe for the same N and L).
 */
export function probeBatch(itemCount: number, maxLength: number, rows = 64): SequenceBatch {
  const rng = new Random(17);
  const items = new Int32Array(rows * maxLength);
  const lengths = new Int32Array(rows);
  for (let b = 0; b < rows; b++) {
    const len = (b % maxLength) + 1;
    lengths[b] = len;
    for (let l = 0; l < len; l++) items[b * maxLength + l] = 1 + rng.int(itemCount);
  }
  return { size: rows, maxLength, items, lengths, targets: new Int32Array(rows) };
}

/** Largest |a_i - b_i|. */
export function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) throw new ValidationError(`maxAbsDiff: ${a.length} values vs ${b.length}`);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs((a[i] as number) - (b[i] as number)));
  return max;
}

export interface WriteOnnxEncoderOptions {
  /** Job named in the manifest (default `streamrec export-onnx`). */
  readonly job?: string;
  /** Largest allowed difference to the TF.js user vectors on the probe batch (default 1e-4). */
  readonly tolerance?: number;
}

/**
 * Builds the graph (its token table as external data beside it), runs it as stored and the TF.js
 * engine on {@link probeBatch}, and writes it as an `onnx_encoder` artifact (the probe's max abs
 * difference in its metrics) when they agree within the tolerance; otherwise an ArtifactError with
 * the difference, and nothing is written.
 */
export async function writeOnnxEncoder(store: ArtifactStore, source: EncoderSource, options: WriteOnnxEncoderOptions = {}): Promise<LoadedArtifact> {
  const tolerance = options.tolerance ?? 1e-4;
  const built = buildOnnxEncoder(source, { externalTokenTable: true });
  const tokenTable = built.tokenTable as Uint8Array;
  const probe = probeBatch(source.model.itemCount, source.model.config.maxHistoryLength);
  // The probe runs the files as they will be stored: opened from the graph's path, the table beside it.
  const dir = await mkdtemp(path.join(tmpdir(), 'streamrec-onnx-export-'));
  let diff: number;
  try {
    await writeFile(path.join(dir, ONNX_ENCODER_FILE), built.bytes);
    await writeFile(path.join(dir, ONNX_TOKEN_TABLE_FILE), tokenTable);
    const onnxEngine = await OnnxUserEncoder.create(path.join(dir, ONNX_ENCODER_FILE), built.settings, { threads: 1 });
    try {
      diff = maxAbsDiff(await onnxEngine.encode(probe), await new TfjsUserEncoder(source.model).encode(probe));
    } finally {
      await onnxEngine.dispose();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  if (!(diff <= tolerance)) {
    throw new ArtifactError(`onnx export of checkpoint ${source.checkpointId}: the graph's user vectors differ from TF.js by up to ${diff} on the probe batch (tolerance ${tolerance}); not written`);
  }
  return store.write({
    kind: 'onnx_encoder',
    job: options.job ?? 'streamrec export-onnx',
    settings: built.settings,
    inputs: built.inputs,
    files: [
      { name: ONNX_ENCODER_FILE, data: Buffer.from(built.bytes), dtype: 'binary', description: `ONNX ModelProto (opset ${ENCODER_OPSET}) of the user encoder; its token_table initializer is external data in ${ONNX_TOKEN_TABLE_FILE}` },
      { name: ONNX_TOKEN_TABLE_FILE, data: Buffer.from(tokenTable.buffer, tokenTable.byteOffset, tokenTable.byteLength), dtype: 'binary', description: `float32 [${built.settings.tokenTable.rows}, ${built.settings.tokenTable.dims}] token table, the graph's external data` },
    ],
    metrics: { probe: { rows: probe.size, maxAbsDiffVsTfjs: diff, backend: tf.getBackend() } },
  });
}

/**
 * The id of the newest stored `onnx_encoder` exported from `source`'s checkpoint for the same
 * catalog (item count and, for CCFRec, the same semantic-ID, text and PCA artifacts) in this
 * version's graph layout ({@link ENCODER_GRAPH_VERSION}), or undefined: an encoder exported by an
 * older version still opens, but a server exports the checkpoint again once and runs the newer graph.
 */
export async function findOnnxEncoder(store: ArtifactStore, source: EncoderSource): Promise<string | undefined> {
  const catalog = stableStringify(catalogOf(source));
  const matching = (await store.list('onnx_encoder')).filter((m) => {
    const parsed = OnnxEncoderSettings.safeParse(m.settings);
    if (!parsed.success) return false;
    const { checkpointId, graph, encoder, tokenTable } = parsed.data;
    if ((graph ?? 1) !== ENCODER_GRAPH_VERSION) return false;
    const stored = stableStringify({ semanticIds: tokenTable.semanticIds, textEmbeddings: tokenTable.textEmbeddings, pca: tokenTable.pca });
    return checkpointId === source.checkpointId && encoder.itemCount === source.model.itemCount && stored === catalog;
  });
  return matching.at(-1)?.id;
}
