import type { InferenceSession } from 'onnxruntime-node';
import { BackendError, ValidationError } from '../../errors';
import { ENCODER_IR_VERSION, ENCODER_OPSET } from './encoderGraph';
import { OnnxGraphBuilder } from './onnxGraph';
import { SERVING_GRAPH_OPTIMIZATION } from './onnxUserEncoder';
import { STREAMREC_VERSION } from '../../version';
import { Coalescer } from '../coalesce';

const QUERIES = 'queries';
const SCORES = 'scores';

/** The rows of a scorer's `table` `[rows, dims]`; a ValidationError when it is not that shape. */
export function scoreTableRows(table: Float32Array, dims: number): number {
  if (!Number.isInteger(dims) || dims < 1 || table.length % dims !== 0 || table.length === 0) {
    throw new ValidationError(`item scorer: a table of ${table.length} values is not [rows, ${dims}]`);
  }
  return table.length / dims;
}

/**
 * What the item scorers share (this one, and ThreadedItemScorer on an inference thread): the
 * table's shape and largest row norm, the error bound, the query checks, and the coalescing of
 * concurrent callers' queries into one run of {@link runAll}.
 */
export abstract class CoalescedItemScorer {
  protected released = false;
  private readonly coalescer = new Coalescer<Float32Array, Float32Array>((queries) => this.runAll(queries), (queries) => queries.length / this.dims, 64);

  protected constructor(
    /** Rows in the table (N + 1 with the padding row). */
    readonly rows: number,
    readonly dims: number,
    /** The largest row norm of the table. */
    readonly maxRowNorm: number,
  ) {}

  /**
   * The largest difference between a float32 score of this scorer for a query of norm
   * `queryNorm` and the exact inner product: a float32 sum of `dims` products is within
   * `dims * 2^-24 * sum |q_i v_i|` of it in any order of summation, the sum is at most
   * `|q| |v|` (Cauchy-Schwarz), and the result is rounded once more; doubled for headroom.
   */
  errorBound(queryNorm: number): number {
    return 2 * (this.dims + 2) * 2 ** -24 * queryNorm * this.maxRowNorm;
  }

  /** Runs made, and the callers' query batches they served (for tests and metrics). */
  get runs(): { readonly calls: number; readonly batches: number } {
    return { calls: this.coalescer.calls, batches: this.coalescer.inputs };
  }

  /** `[B, rows]` scores of `queries` `[B, dims]`. */
  async scores(queries: Float32Array, batch: number): Promise<Float32Array> {
    if (this.released) throw new BackendError('item scorer: scores after dispose');
    if (queries.length !== batch * this.dims || batch < 1) throw new ValidationError(`item scorer: expected [${batch}, ${this.dims}] queries (${batch * this.dims} values), got ${queries.length}`);
    return this.coalescer.submit(queries);
  }

  abstract dispose(): Promise<void>;

  /** One run for several callers' queries: each caller's `[B_i, rows]` scores. */
  protected abstract runAll(parts: readonly Float32Array[]): Promise<Float32Array[]>;
}

/**
 * Every item's inner product with a batch of query vectors, in native code: one ONNX Runtime
 * session over the graph `scores = queries [B, H] x items^T [H, N + 1]` (built in memory, the item
 * table an initializer; MLAS's single-precision kernels).
 *
 * The scores are float32 sums, so they differ from the float64 ones of `dot64` by at most
 * {@link errorBound}; the ranker uses them only to rule items out (an item whose score plus the
 * bound cannot enter the top k is skipped) and scores the rest exactly, so its answers stay those
 * of scoring every item in float64. On a 4,385-item catalog at H = 64 a run takes ~0.1 ms where
 * the JS loop takes ~0.8 ms (`npm run bench -- serving`; docs/benchmarks.md).
 *
 * Queries of concurrent callers asked for in the same event-loop turn run as one batch
 * (serving/coalesce.ts): under load one session run scores the user vectors of several requests.
 */
export class OnnxItemScorer extends CoalescedItemScorer {
  private constructor(
    private readonly ort: typeof import('onnxruntime-node'),
    private readonly session: InferenceSession,
    rows: number,
    dims: number,
    maxRowNorm: number,
  ) {
    super(rows, dims, maxRowNorm);
  }

  /**
   * A scorer over `table` `[rows, dims]` (row-major). One intra-op thread by default (serving
   * answers requests side by side; more threads only contend). A runtime that cannot load is a
   * BackendError.
   */
  static async create(table: Float32Array, dims: number, options: { readonly threads?: number } = {}): Promise<OnnxItemScorer> {
    const rows = scoreTableRows(table, dims);
    const transposed = new Float32Array(table.length); // [dims, rows]
    let maxRowNorm = 0;
    for (let r = 0; r < rows; r++) {
      let norm = 0;
      for (let d = 0; d < dims; d++) {
        const v = table[r * dims + d] as number;
        transposed[d * rows + r] = v;
        norm += v * v;
      }
      maxRowNorm = Math.max(maxRowNorm, Math.sqrt(norm));
    }
    const g = new OnnxGraphBuilder();
    const queries = g.input(QUERIES, 'float32', ['batch', dims]);
    g.output(g.op('MatMul', [queries, g.floats('items_t', [dims, rows], transposed)]), SCORES, 'float32', ['batch', rows]);
    const model = g.encode({
      graphName: 'streamrec_item_scores',
      opset: ENCODER_OPSET,
      irVersion: ENCODER_IR_VERSION,
      producer: 'streamrec',
      producerVersion: STREAMREC_VERSION,
      docString: 'queries x items^T',
      metadata: {},
    });
    let ort: typeof import('onnxruntime-node');
    let session: InferenceSession;
    try {
      ort = await import('onnxruntime-node');
      session = await ort.InferenceSession.create(model, { executionProviders: ['cpu'], graphOptimizationLevel: SERVING_GRAPH_OPTIMIZATION, executionMode: 'sequential', logSeverityLevel: 3, intraOpNumThreads: options.threads ?? 1 });
    } catch (cause) {
      throw new BackendError(`item scorer: onnxruntime cannot run the score graph: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    }
    return new OnnxItemScorer(ort, session, rows, dims, maxRowNorm);
  }

  /** One session run for several callers' queries: each caller's `[B_i, rows]` scores (views of one output). */
  protected async runAll(parts: readonly Float32Array[]): Promise<Float32Array[]> {
    const queries = parts.length === 1 ? (parts[0] as Float32Array) : concatQueries(parts);
    const batch = queries.length / this.dims;
    const result = await this.session.run({ [QUERIES]: new this.ort.Tensor('float32', queries, [batch, this.dims]) });
    const output = result[SCORES];
    if (!output || output.type !== 'float32' || output.dims[0] !== batch || output.dims[1] !== this.rows) {
      throw new BackendError(`item scorer: expected float32 [${batch}, ${this.rows}] scores, got ${output ? `${output.type} [${output.dims.join(', ')}]` : 'nothing'}`);
    }
    return splitScores(output.data as Float32Array, parts, this.dims, this.rows);
  }

  override async dispose(): Promise<void> {
    if (this.released) return;
    this.released = true;
    await this.session.release();
  }
}

/** Each caller's `[B_i, rows]` scores: views of one run's `data` for the callers' `parts` (`[B_i, dims]` queries each, in order). */
export function splitScores(data: Float32Array, parts: readonly Float32Array[], dims: number, rows: number): Float32Array[] {
  const out: Float32Array[] = [];
  let row = 0;
  for (const part of parts) {
    const count = part.length / dims;
    out.push(data.subarray(row * rows, (row + count) * rows));
    row += count;
  }
  return out;
}

/** The callers' queries in one array, in order. */
export function concatQueries(parts: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
