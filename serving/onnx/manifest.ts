import path from 'node:path';
import { z } from 'zod';
import { ArtifactError } from '../../errors';
import type { ArtifactStore, LoadedArtifact } from '../../infra/artifacts';

/**
 * The settings section of an `onnx_encoder` artifact's manifest: which checkpoint and catalog the
 * graph was exported from, how it was built (opset, IR version, the forms of LayerNorm, GELU and
 * the mask), what it takes and gives (names, dtypes, shapes), and where its token table came from.
 * Read back with {@link OnnxEncoderSettings}.parse: a mismatch is an ArtifactError, never a guess.
 */

export const ONNX_ENCODER_FORMAT = 1;
export const ONNX_ENCODER_FILE = 'encoder.onnx';
/** The token table as the graph's external data, beside {@link ONNX_ENCODER_FILE}. */
export const ONNX_TOKEN_TABLE_FILE = 'token_table.bin';

const TensorSpec = z
  .strictObject({
    name: z.string().min(1).describe('Input or output name in the graph.'),
    dtype: z.enum(['int32', 'float32']).describe('Element type the session takes or gives.'),
    shape: z.array(z.union([z.number().int().positive(), z.string().min(1)])).describe('Dimensions; a string is symbolic (`batch`).'),
    description: z.string().describe('What it holds.'),
  })
  .describe('One graph input or output.');
export type TensorSpec = z.infer<typeof TensorSpec>;

export const TOKEN_TABLE_SOURCES = ['sasrec.itemEmbedding', 'ccfrec.qformerCodeMean'] as const;

export const OnnxEncoderSettings = z.strictObject({
  format: z.literal(ONNX_ENCODER_FORMAT).describe('Layout version of this artifact.'),
  checkpointId: z.string().min(1).describe('The checkpoint whose weights the graph holds.'),
  graph: z
    .number()
    .int()
    .positive()
    .optional()
    .describe(
      "Graph layout (absent: 1, every layer at every position; 2: the last layer at each row's last position only; 3: attention as ONNX Runtime's fused Attention op). Any layout gives the same vectors; serving exports again when the stored one is older than ENCODER_GRAPH_VERSION.",
    ),
  modelType: z.enum(['ccfrec', 'sasrec']).describe('The model the checkpoint holds.'),
  opset: z.number().int().positive().describe('Default-domain opset the graph imports.'),
  irVersion: z.number().int().positive().describe('ONNX IR version of the ModelProto.'),
  file: z.literal(ONNX_ENCODER_FILE).describe('The ModelProto file in the artifact.'),
  inputs: z.array(TensorSpec).length(1).describe('Graph inputs.'),
  outputs: z.array(TensorSpec).length(1).describe('Graph outputs.'),
  encoder: z
    .strictObject({
      itemCount: z.number().int().positive().describe('N: ids 1..N are items, 0 is padding.'),
      hiddenSize: z.number().int().positive().describe('H'),
      nHeads: z.number().int().positive(),
      nLayers: z.number().int().nonnegative(),
      innerSize: z.number().int().positive(),
      layerNormEps: z.number().positive(),
      maxHistoryLength: z.number().int().positive().describe('L: the input is [batch, L].'),
    })
    .describe('The sequence-encoder settings the graph was built with.'),
  ops: z
    .strictObject({
      layerNorm: z.literal('LayerNormalization').describe('LayerNorm as the opset-17 op (axis -1).'),
      gelu: z.literal('erf').describe('Exact GELU from Erf: x * (erf(x / sqrt 2) + 1) * 0.5 (layout 1: x * ((erf(x * sqrt(1/2)) + 1) * 0.5), as the trainer writes it).'),
      maskScore: z.number().describe('Additive score of masked attention positions (finite: no NaN on a fully masked row).'),
    })
    .describe('How the parts without a one-to-one op were expressed.'),
  tokenTable: z
    .strictObject({
      source: z.enum(TOKEN_TABLE_SOURCES).describe('How the rows were computed from the checkpoint.'),
      rows: z.number().int().positive().describe('N + 1 (row 0 = padding).'),
      dims: z.number().int().positive().describe('H'),
      sha256: z.string().regex(/^[0-9a-f]{64}$/).describe('Hash of the float32 rows (little-endian), as the graph holds them.'),
      file: z
        .literal(ONNX_TOKEN_TABLE_FILE)
        .optional()
        .describe(
          "The file beside the graph holding the rows as ONNX external data of its token_table initializer (float32, little-endian, [N + 1, H]): ONNX Runtime maps it when the session is opened from the graph's path. Absent: the rows are inside the graph (encoders exported before it; they still open, from the graph's bytes).",
        ),
      semanticIds: z.string().optional().describe('Semantic-ID artifact of the catalog (CCFRec).'),
      textEmbeddings: z.record(z.string(), z.string()).optional().describe('Text-embedding artifact per field (CCFRec).'),
      pca: z.string().optional().describe('PCA artifact the text went through (CCFRec).'),
    })
    .describe('The item id -> encoder token table (the initializer token_table), where it is stored, and its provenance.'),
});
export type OnnxEncoderSettings = z.infer<typeof OnnxEncoderSettings>;

/** An `onnx_encoder` artifact read back: its checked settings and its graph bytes (every file's size and sha256 checked). */
export interface StoredOnnxEncoder {
  readonly artifact: LoadedArtifact;
  readonly settings: OnnxEncoderSettings;
  /** The ModelProto; without its token table when that is external data ({@link OnnxEncoderSettings} `tokenTable.file`). */
  readonly bytes: Uint8Array;
  /**
   * What to open a session from: the graph's path when its token table is external data beside it
   * (ONNX Runtime reads the graph and maps the table: a session over a 100,000-item catalog opens
   * in ~4 ms instead of 40-45 ms of copying the table out of the bytes, and in a server swapping
   * under load in 5-12 ms instead of 174-230 ms, synchronous work on the thread that opens it),
   * else the bytes.
   */
  readonly model: Uint8Array | string;
}

/** Opens an `onnx_encoder` artifact by id (`onnx_encoder-<16 hex>`, in `store`) or by directory. */
export async function readOnnxEncoder(store: ArtifactStore, idOrDir: string): Promise<StoredOnnxEncoder> {
  const artifact = /^onnx_encoder-[0-9a-f]{16}$/.test(idOrDir) ? await store.open(idOrDir) : await store.openDir(idOrDir);
  if (artifact.manifest.kind !== 'onnx_encoder') {
    throw new ArtifactError(`artifact ${artifact.id} is a ${artifact.manifest.kind}, not an onnx_encoder`, { context: { path: artifact.dir } });
  }
  const parsed = OnnxEncoderSettings.safeParse(artifact.manifest.settings);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ArtifactError(
      `onnx encoder ${artifact.id}: settings are invalid at ${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'invalid'} (format ${ONNX_ENCODER_FORMAT} expected)`,
      { context: { path: artifact.dir } },
    );
  }
  const settings = parsed.data;
  const data = await artifact.readFile(settings.file);
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (!settings.tokenTable.file) return { artifact, settings, bytes, model: bytes };
  // Checked here (size and sha256, in slices); the runtime then maps the file it read.
  await artifact.readFile(settings.tokenTable.file);
  return { artifact, settings, bytes, model: path.join(artifact.dir, settings.file) };
}
