import type { InferenceSession } from 'onnxruntime-node';
import { ArtifactError, BackendError, ConfigError, describeValue } from '../../errors';
import type { ArtifactStore } from '../../infra/artifacts';
import type { SequenceBatch } from '../../trainer';
import { readOnnxEncoder, type OnnxEncoderSettings } from './manifest';
import { checkEncoderBatch, type UserEncoder } from './userEncoder';

/** How the ONNX Runtime session runs. */
export interface OnnxSessionOptions {
  /** Intra-op threads; 0 or undefined = ONNX Runtime's default (one per physical core). */
  readonly threads?: number;
  /**
   * Rows per session run (default {@link DEFAULT_ROWS_PER_RUN}): a batch's rows are sorted by
   * length and run in groups of this many, each at its own longest length, so short histories do
   * not pay for the batch's longest one.
   */
  readonly rowsPerRun?: number;
}

/**
 * `npm run bench -- onnx` on Scientific (L = 20, 1,000 test histories, batch 256): 16, 32 and 64
 * rows per run were within the noise of a shared 2-core machine; one run for all 256 rows (every
 * row at the batch's longest length) was 2-4x slower.
 */
export const DEFAULT_ROWS_PER_RUN = 32;

/**
 * ONNX Runtime's graph optimisations for serving's sessions: `extended` (constant folding, node
 * fusions). `all` adds layout transformations for convolutions, which these graphs have none of:
 * at 100,000 items it made no difference to a user vector's time (100-119 us either way) and
 * made creating the session, synchronous work on the serving thread during a swap, 2-3x longer
 * (34-61 ms instead of 13-24 ms alone on the machine, .scratch probe).
 */
export const SERVING_GRAPH_OPTIMIZATION = 'extended' as const;

/**
 * The ONNX engine: an exported user-encoder graph (encoderGraph.ts) in one onnxruntime-node CPU
 * session, created once and reused by every call (`run` may be called concurrently). The graph
 * takes any sequence length up to L; the engine sorts a batch's rows by length and runs them in
 * groups of `rowsPerRun`, each cut to its longest row (trailing padding never changes a row's
 * vector: padded keys are masked and the output is read at the row's own last item), then puts
 * the vectors back in the batch's order.
 */
export class OnnxUserEncoder implements UserEncoder {
  readonly kind = 'onnx' as const;
  readonly itemCount: number;
  readonly hiddenSize: number;
  readonly maxHistoryLength: number;
  private readonly inputName: string;
  private readonly outputName: string;
  private readonly rowsPerRun: number;
  private released = false;

  private constructor(
    private readonly ort: typeof import('onnxruntime-node'),
    private readonly session: InferenceSession,
    readonly settings: OnnxEncoderSettings,
    options: OnnxSessionOptions,
  ) {
    this.rowsPerRun = options.rowsPerRun ?? DEFAULT_ROWS_PER_RUN;
    this.itemCount = settings.encoder.itemCount;
    this.hiddenSize = settings.encoder.hiddenSize;
    this.maxHistoryLength = settings.encoder.maxHistoryLength;
    this.inputName = (settings.inputs[0] as OnnxEncoderSettings['inputs'][number]).name;
    this.outputName = (settings.outputs[0] as OnnxEncoderSettings['outputs'][number]).name;
  }

  /**
   * A session over `model` (the ModelProto bytes, or the path of a graph whose token table is
   * external data beside it: {@link readOnnxEncoder}) described by `settings`. The session's declared
   * input and output must be the ones the settings name, with their dtypes; otherwise an
   * ArtifactError says what differs. A runtime that cannot load is a BackendError.
   */
  static async create(model: Uint8Array | string, settings: OnnxEncoderSettings, options: OnnxSessionOptions = {}): Promise<OnnxUserEncoder> {
    const rows = options.rowsPerRun;
    if (rows !== undefined && (!Number.isInteger(rows) || rows < 1)) throw new ConfigError(`onnx user encoder: rowsPerRun must be a positive integer, got ${describeValue(rows)}`);
    let ort: typeof import('onnxruntime-node');
    try {
      ort = await import('onnxruntime-node');
    } catch (cause) {
      throw new BackendError('onnx user encoder: onnxruntime-node cannot be loaded', { cause });
    }
    let session: InferenceSession;
    try {
      const sessionOptions: InferenceSession.SessionOptions = {
        executionProviders: ['cpu'],
        graphOptimizationLevel: SERVING_GRAPH_OPTIMIZATION,
        executionMode: 'sequential',
        logSeverityLevel: 3,
        ...(options.threads ? { intraOpNumThreads: options.threads } : {}),
      };
      session = typeof model === 'string' ? await ort.InferenceSession.create(model, sessionOptions) : await ort.InferenceSession.create(model, sessionOptions);
    } catch (cause) {
      throw new ArtifactError(`onnx user encoder of checkpoint ${settings.checkpointId}: onnxruntime cannot load the graph: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    }
    const declared = (list: readonly InferenceSession.ValueMetadata[], spec: OnnxEncoderSettings['inputs'][number], role: string): void => {
      const meta = list.find((m) => m.name === spec.name);
      const type = meta && meta.isTensor ? meta.type : undefined;
      if (type !== spec.dtype) {
        void session.release();
        throw new ArtifactError(
          `onnx user encoder of checkpoint ${settings.checkpointId}: the graph's ${role} ${spec.name} is ${meta ? (type ?? 'not a tensor') : 'missing'} (has: ${list.map((m) => m.name).join(', ')}), the manifest says ${spec.dtype}`,
        );
      }
    };
    declared(session.inputMetadata, settings.inputs[0] as OnnxEncoderSettings['inputs'][number], 'input');
    declared(session.outputMetadata, settings.outputs[0] as OnnxEncoderSettings['outputs'][number], 'output');
    return new OnnxUserEncoder(ort, session, settings, options);
  }

  /** Opens an `onnx_encoder` artifact (id in `store`, or a directory) as an engine. */
  static async open(store: ArtifactStore, idOrDir: string, options: OnnxSessionOptions = {}): Promise<OnnxUserEncoder> {
    const stored = await readOnnxEncoder(store, idOrDir);
    return OnnxUserEncoder.create(stored.model, stored.settings, options);
  }

  async encode(batch: SequenceBatch): Promise<Float32Array> {
    if (this.released) throw new BackendError('onnx user encoder: encode after dispose');
    checkEncoderBatch(batch, this);
    const { size: B, maxLength: L, items, lengths } = batch;
    const H = this.hiddenSize;
    // One history (most requests): its row of the batch as it is, and the run's output as the answer.
    if (B === 1) {
      const S = lengths[0] as number;
      return this.run(items.subarray(0, S), 1, S);
    }
    const order = Array.from({ length: B }, (_, b) => b).sort((x, y) => (lengths[x] as number) - (lengths[y] as number) || x - y);
    const out = new Float32Array(B * H);
    for (let start = 0; start < B; start += this.rowsPerRun) {
      const rows = order.slice(start, start + this.rowsPerRun);
      const S = lengths[rows[rows.length - 1] as number] as number; // the group's longest row
      const ids = new Int32Array(rows.length * S); // [rows, S]
      rows.forEach((b, r) => ids.set(items.subarray(b * L, b * L + S), r * S));
      const vectors = await this.run(ids, rows.length, S); // [rows, H]
      rows.forEach((b, r) => out.set(vectors.subarray(r * H, (r + 1) * H), b * H));
    }
    return out;
  }

  /** One session run: `[rows, S]` ids -> `[rows * H]` vectors. */
  private async run(ids: Int32Array, rows: number, S: number): Promise<Float32Array> {
    const result = await this.session.run({ [this.inputName]: new this.ort.Tensor('int32', ids, [rows, S]) });
    const output = result[this.outputName];
    if (!output || output.type !== 'float32' || output.dims.length !== 2 || output.dims[0] !== rows || output.dims[1] !== this.hiddenSize) {
      throw new BackendError(
        `onnx user encoder: output ${this.outputName} should be float32 [${rows}, ${this.hiddenSize}], got ${output ? `${output.type} [${output.dims.join(', ')}]` : 'nothing'}`,
      );
    }
    return output.data as Float32Array;
  }

  async dispose(): Promise<void> {
    if (this.released) return;
    this.released = true;
    await this.session.release();
  }
}
