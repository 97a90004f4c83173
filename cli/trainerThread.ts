import path from 'node:path';
import { MessageChannel, type Worker } from 'node:worker_threads';
import { ConfigError, StreamrecError } from '../errors';
import { serveClickHouseRelay } from '../infra/clickhouse';
import { startWorker } from '../infra/worker';
import type { AppConfig, LiveStep } from '../jobs';

/** What the trainer thread starts with. */
export interface TrainerThreadData {
  readonly config: AppConfig;
  /** Before publishing, export the ONNX encoder (`streamrec trainer --prepare-serving`): the server's swap then loads it instead of exporting. */
  readonly prepare: boolean;
}

export type ToTrainer =
  | { readonly type: 'bootstrap'; readonly model: 'ccfrec' | 'sasrec'; readonly epochs: number }
  | { readonly type: 'live'; readonly settings: AppConfig['live'] }
  | { readonly type: 'stop' };

export type FromTrainer =
  | { readonly type: 'bootstrapped'; readonly version: number; readonly checkpointId: string; readonly seconds: number }
  | { readonly type: 'started'; readonly runId: string; readonly version: number; readonly checkpointId: string }
  | { readonly type: 'step'; readonly step: LiveStep }
  | { readonly type: 'stopped' }
  | { readonly type: 'failed'; readonly error: { readonly name: string; readonly message: string; readonly stack?: string } };

/** The trainer thread failed; the message and stack are its error's. */
export class TrainerThreadError extends StreamrecError {
  override readonly code = 'trainer-thread';
}

/**
 * `streamrec run`'s trainer on a worker thread of the same process: bootstrap (the first model)
 * and the live loop ({@link LiveTrainer}) run there, so their TF.js steps (most of a second each,
 * synchronous) never hold up the thread that consumes, keeps histories and answers requests.
 * Embedded ClickHouse stays with this thread (one engine per process and directory): the worker
 * reaches it through a relay. The model registry must be one both threads see (`dir:`); serving
 * picks up each publication from it as from any trainer.
 */
export class TrainerThread {
  private readonly worker: Worker;
  private readonly closeRelay?: () => Promise<void>;
  private listener?: (message: FromTrainer) => void;
  private failure?: Error;
  private closing = false;
  private readonly exited: Promise<void>;

  constructor(config: AppConfig, options: { readonly prepare?: boolean } = {}) {
    if (config.modelRegistry.url === 'memory:') throw new ConfigError('modelRegistry.url: the trainer thread and the server need a registry both see (dir:<directory>); memory: is one thread\'s', { context: { field: 'modelRegistry.url' } });
    const data: TrainerThreadData = { config, prepare: options.prepare ?? true };
    // Embedded ClickHouse is relayed from this thread; a server the worker opens itself.
    const relay = config.clickhouse.url.startsWith('chdb:') ? new MessageChannel() : undefined;
    if (relay) this.closeRelay = serveClickHouseRelay(config.clickhouse, relay.port1);
    this.worker = startWorker(path.join(__dirname, 'trainerWorker'), {
      workerData: relay ? { ...data, relay: relay.port2 } : data,
      ...(relay ? { transferList: [relay.port2] } : {}),
      name: 'streamrec trainer',
    });
    this.worker.on('message', (message: FromTrainer) => this.listener?.(message));
    this.worker.on('error', (error) => this.fail(error));
    this.exited = new Promise<void>((resolve) => this.worker.once('exit', (code) => {
      // A request still waiting gets this (a close while bootstrapping, a crash).
      this.fail(new TrainerThreadError(this.closing ? 'the trainer thread was closed' : `the trainer thread exited with code ${code}`));
      resolve();
    }));
  }

  /** The thread itself is gone (an uncaught error, an exit): every request from now on fails with this. */
  private fail(error: Error): void {
    this.failure ??= error;
    this.listener?.({ type: 'failed', error });
  }

  /** Sends `request` and waits for the first message `until` accepts (or the thread's failure). */
  private ask<T>(request: ToTrainer, until: (message: FromTrainer) => T | undefined, onOther?: (message: FromTrainer) => void): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (this.failure) return reject(this.failure);
      this.listener = (message) => {
        if (message.type === 'failed') {
          // What the request did failed on the thread (the thread goes on), or the thread is gone.
          this.listener = undefined;
          return reject(this.failure ?? Object.assign(new TrainerThreadError(message.error.message), message.error.stack ? { stack: message.error.stack } : {}));
        }
        const done = until(message);
        if (done !== undefined) {
          this.listener = undefined;
          resolve(done);
        } else {
          onOther?.(message);
        }
      };
      this.worker.postMessage(request);
    });
  }

  /**
   * Trains the first model from the archive and publishes it ({@link bootstrapModel}, on the
   * thread). `signal` ends the thread mid-training (undefined then; nothing is published, and what
   * it wrote is left as a killed job leaves it).
   */
  async bootstrap(model: 'ccfrec' | 'sasrec', epochs: number, signal: AbortSignal): Promise<Extract<FromTrainer, { type: 'bootstrapped' }> | undefined> {
    if (signal.aborted) return undefined;
    const onAbort = (): void => void this.close();
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      return await this.ask({ type: 'bootstrap', model, epochs }, (m) => (m.type === 'bootstrapped' ? m : undefined));
    } catch (error) {
      if (signal.aborted) return undefined;
      throw error;
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  /**
   * Continues the live model in micro-epochs until `signal` aborts (the look in progress finishes
   * first): `onStart` once the trainer has loaded the live version, `onStep` after each look.
   * Rejects when the thread fails.
   */
  run(settings: AppConfig['live'], signal: AbortSignal, handlers: { readonly onStart?: (started: Extract<FromTrainer, { type: 'started' }>) => void; readonly onStep?: (step: LiveStep) => void } = {}): Promise<void> {
    // The thread's trainer stops after its look; asked before it starts, it stops at once.
    const onAbort = (): void => this.worker.postMessage({ type: 'stop' } satisfies ToTrainer);
    const stopped = this.ask({ type: 'live', settings }, (m) => (m.type === 'stopped' ? m : undefined), (m) => {
      if (m.type === 'started') handlers.onStart?.(m);
      else if (m.type === 'step') handlers.onStep?.(m.step);
    });
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    return stopped.then(() => undefined).finally(() => signal.removeEventListener('abort', onAbort));
  }

  /** Ends the thread (after what it is doing when asked to stop first) and the relay. */
  async close(): Promise<void> {
    this.closing = true;
    await this.worker.terminate();
    await this.exited;
    await this.closeRelay?.();
  }
}
