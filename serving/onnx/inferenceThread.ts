import path from 'node:path';
import type { Worker } from 'node:worker_threads';
import { BackendError } from '../../errors';
import { startWorker } from '../../infra/worker';
import type { SequenceBatch } from '../../trainer';
import { ownBuffer, reviveError, type InferenceReply, type InferenceRequest } from './inferenceProtocol';
import { CoalescedItemScorer, concatQueries, scoreTableRows, splitScores } from './itemScorer';
import type { OnnxEncoderSettings } from './manifest';
import type { OnnxSessionOptions } from './onnxUserEncoder';
import { checkEncoderBatch, type UserEncoder } from './userEncoder';

type Request = InferenceRequest extends infer R ? (R extends { readonly id: number } ? Omit<R, 'id'> : never) : never;
type Answer = Extract<InferenceReply, { ok: true }>;

/**
 * A thread of its own for ONNX Runtime: onnxruntime-node runs a session synchronously on the
 * calling thread (its `run` only defers the call with setImmediate), so on the server's thread
 * every user vector and every score row holds the event loop, and requests queue behind it.
 * Here the sessions live in a worker thread (inferenceWorker.ts) and the server's thread only
 * posts inputs and reads answers: measured on the bench's Scientific encoder, an encoder run cost
 * the calling thread 87 us in place and 34 us through the thread (the run itself goes to the
 * other core), for ~90 us more latency.
 *
 * The thread starts with the first engine opened on it and does not keep the process alive while
 * idle. {@link close} stops it; engines opened on it fail after that.
 */
export class InferenceThread {
  private worker: Worker | undefined;
  private readonly pending = new Map<number, { resolve: (reply: Answer) => void; reject: (error: Error) => void }>();
  private nextId = 1;
  private closed = false;

  /** Posts `request` and settles with the worker's answer (its error, revived, when it failed). */
  call(request: Request, transfer: readonly ArrayBuffer[] = []): Promise<Answer> {
    if (this.closed) return Promise.reject(new BackendError('inference thread: used after close'));
    const worker = this.start();
    const id = this.nextId++;
    return new Promise<Answer>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      if (this.pending.size === 1) worker.ref(); // an answer to wait for keeps the process up
      worker.postMessage({ ...request, id }, [...transfer]);
    });
  }

  /** Stops the thread; calls in flight fail. */
  async close(): Promise<void> {
    this.closed = true;
    const worker = this.worker;
    this.worker = undefined;
    if (worker) await worker.terminate();
    this.failAll(new BackendError('inference thread: closed'));
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    const worker = startWorker(path.join(__dirname, 'inferenceWorker'));
    worker.unref();
    worker.on('message', (reply: InferenceReply) => {
      const waiting = this.pending.get(reply.id);
      if (!waiting) return;
      this.pending.delete(reply.id);
      if (this.pending.size === 0) worker.unref();
      if (reply.ok) waiting.resolve(reply);
      else waiting.reject(reviveError(reply.error));
    });
    worker.on('error', (error) => this.failAll(new BackendError(`inference thread failed: ${error.message}`, { cause: error })));
    worker.on('exit', (code) => {
      if (this.worker === worker) this.worker = undefined;
      this.failAll(new BackendError(`inference thread exited with code ${code}`));
    });
    this.worker = worker;
    return worker;
  }

  private failAll(error: Error): void {
    const waiting = [...this.pending.values()];
    this.pending.clear();
    for (const w of waiting) w.reject(error);
  }
}

/** The ONNX user encoder (OnnxUserEncoder) run on an {@link InferenceThread}. */
export class ThreadedUserEncoder implements UserEncoder {
  readonly kind = 'onnx' as const;
  readonly itemCount: number;
  readonly hiddenSize: number;
  readonly maxHistoryLength: number;
  private released = false;

  private constructor(
    private readonly thread: InferenceThread,
    private readonly handle: number,
    readonly settings: OnnxEncoderSettings,
  ) {
    this.itemCount = settings.encoder.itemCount;
    this.hiddenSize = settings.encoder.hiddenSize;
    this.maxHistoryLength = settings.encoder.maxHistoryLength;
  }

  /** Opens the graph `model` (its bytes, or its path: see OnnxUserEncoder.create) described by `settings` on `thread` (what OnnxUserEncoder.create checks, there). */
  static async create(thread: InferenceThread, model: Uint8Array | string, settings: OnnxEncoderSettings, options: OnnxSessionOptions = {}): Promise<ThreadedUserEncoder> {
    // Only the session's settings cross (a caller's options object may hold more).
    const session: OnnxSessionOptions = { ...(options.threads === undefined ? {} : { threads: options.threads }), ...(options.rowsPerRun === undefined ? {} : { rowsPerRun: options.rowsPerRun }) };
    const { handle } = await thread.call({ op: 'openEncoder', model, settings, options: session });
    if (handle === undefined) throw new BackendError('inference thread: opened an encoder without a handle');
    return new ThreadedUserEncoder(thread, handle, settings);
  }

  async encode(batch: SequenceBatch): Promise<Float32Array> {
    if (this.released) throw new BackendError('onnx user encoder: encode after dispose');
    checkEncoderBatch(batch, this);
    const { size, maxLength } = batch;
    const answer = await this.thread.call({ op: 'encode', handle: this.handle, size, maxLength, items: ownBuffer(batch.items), lengths: ownBuffer(batch.lengths) });
    if (!answer.values || answer.values.length !== size * this.hiddenSize) {
      throw new BackendError(`onnx user encoder: expected ${size * this.hiddenSize} values from the inference thread, got ${answer.values?.length ?? 'none'}`);
    }
    return answer.values;
  }

  async dispose(): Promise<void> {
    if (this.released) return;
    this.released = true;
    await this.thread.call({ op: 'close', handle: this.handle }).catch(() => undefined); // a closed thread has freed it
  }
}

/**
 * The native item scorer (OnnxItemScorer) run on an {@link InferenceThread}: the same scores and
 * error bound. Queries of concurrent callers asked for in the same event-loop turn go to the thread
 * as one batch.
 */
export class ThreadedItemScorer extends CoalescedItemScorer {
  private constructor(
    private readonly thread: InferenceThread,
    private readonly handle: number,
    rows: number,
    dims: number,
    maxRowNorm: number,
  ) {
    super(rows, dims, maxRowNorm);
  }

  /** A scorer over `table` `[rows, dims]` (row-major; copied to the thread) on `thread`. */
  static async create(thread: InferenceThread, table: Float32Array, dims: number, options: { readonly threads?: number } = {}): Promise<ThreadedItemScorer> {
    const rows = scoreTableRows(table, dims);
    const answer = await thread.call({ op: 'openScorer', table, dims, ...(options.threads === undefined ? {} : { threads: options.threads }) });
    if (answer.handle === undefined || answer.maxRowNorm === undefined) throw new BackendError('inference thread: opened a scorer without a handle');
    return new ThreadedItemScorer(thread, answer.handle, rows, dims, answer.maxRowNorm);
  }

  override async dispose(): Promise<void> {
    if (this.released) return;
    this.released = true;
    await this.thread.call({ op: 'close', handle: this.handle }).catch(() => undefined);
  }

  protected async runAll(parts: readonly Float32Array[]): Promise<Float32Array[]> {
    const queries = concatQueries(parts); // a copy of its own: its buffer moves to the thread
    const batch = queries.length / this.dims;
    const answer = await this.thread.call({ op: 'scores', handle: this.handle, queries, batch }, [queries.buffer as ArrayBuffer]);
    const data = answer.values;
    if (!data || data.length !== batch * this.rows) throw new BackendError(`item scorer: expected [${batch}, ${this.rows}] scores from the inference thread, got ${data?.length ?? 'none'} values`);
    return splitScores(data, parts, this.dims, this.rows);
  }
}
