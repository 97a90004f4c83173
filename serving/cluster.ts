/**
 * Serving on several cores: `streamrec serve --workers N` runs N server processes (node:cluster)
 * behind one port. onnxruntime-node, hnswlib and the ranker run on a server's event loop, so one
 * process answers on one core; the primary accepts connections and hands them to the workers in
 * turn (node's round-robin scheduling), and each worker is a whole server: it loads the live model
 * itself, follows the registry and (with `--histories kafka`) the history changelog itself, as
 * replicas side by side do.
 *
 * What the workers share goes through the primary over IPC:
 * - `/metrics` answered by any worker is the cluster's: the primary collects every worker's
 *   registry (prom-client's AggregatorRegistry) and sums counters and histograms; gauges use the
 *   aggregator each declares (serving/metrics.ts).
 * - `/admin/reload` answered by any worker makes every worker check the registry and reports each
 *   one's outcome.
 * - A worker that exits is started again (after a delay that doubles while workers die young);
 *   closing the cluster stops every worker gracefully (each drains its requests in flight).
 */
import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry, type Registry } from 'prom-client';
import { ConfigError, StreamrecError } from '../errors';
import { createLogger } from '../logging';
import type { SwapOutcome } from './modelHolder';

const log = createLogger('serving.cluster');

/** Set by the primary in each worker's environment: the worker's slot, 0..N-1. */
export const WORKER_ENV = 'STREAMREC_SERVING_WORKER';

/** One worker's answer to a cluster-wide reload. */
export interface WorkerReload {
  readonly worker: number;
  readonly pid: number;
  readonly outcome: SwapOutcome | { readonly kind: 'error'; readonly error: string };
  /** The version the worker serves after it. */
  readonly version: number | null;
}

/** Messages of the cluster, tagged with `streamrec`, so that others on the channel (prom-client's, a benchmark's) pass by. */
type ToPrimary =
  | { readonly streamrec: 'ready'; readonly url: string }
  | { readonly streamrec: 'metrics'; readonly id: number }
  | { readonly streamrec: 'reload'; readonly id: number }
  | { readonly streamrec: 'synced'; readonly id: number; readonly result: WorkerReload };
type ToWorker =
  | { readonly streamrec: 'stop' }
  | { readonly streamrec: 'sync'; readonly id: number }
  | { readonly streamrec: 'metrics'; readonly id: number; readonly text?: string; readonly error?: string }
  | { readonly streamrec: 'reloaded'; readonly id: number; readonly results: readonly WorkerReload[] };

function tagged<T extends { streamrec: string }>(message: unknown): T | undefined {
  return message !== null && typeof message === 'object' && typeof (message as { streamrec?: unknown }).streamrec === 'string' ? (message as T) : undefined;
}

/** How long a worker waits for the primary's answer (metrics, a cluster-wide reload) before failing the request. */
const ASK_TIMEOUT_MS = 30_000;
/** A worker that lived shorter than this before it exited doubles the restart delay. */
const YOUNG_MS = 60_000;
const MAX_RESTART_DELAY_MS = 30_000;

export interface ServingClusterOptions {
  readonly workers: number;
  /** How long a worker gets to drain its requests in flight when the cluster closes (serving.shutdownGraceMs); it is killed 5 s after. */
  readonly shutdownGraceMs: number;
  /**
   * What each worker runs: by default this process's script, arguments and node flags, so that
   * `streamrec serve --workers N` runs `streamrec serve` N times (each sees {@link WORKER_ENV}).
   */
  readonly exec?: string;
  readonly args?: readonly string[];
  readonly execArgv?: readonly string[];
  /** First delay before a worker that exited is started again (default 1,000 ms; doubles while workers exit within a minute of starting, up to 30 s). */
  readonly restartDelayMs?: number;
  /** How long {@link ServingCluster.start} waits for every worker to listen (default 10 minutes: a worker loads the model first). */
  readonly startTimeoutMs?: number;
  /** Messages from workers that are not the cluster's own (a benchmark's). */
  readonly onMessage?: (worker: number, message: unknown) => void;
}

interface Slot {
  worker: Worker;
  startedAt: number;
  delay: number;
  listening: boolean;
}

interface ReloadRound {
  readonly asker: Worker;
  readonly askerId: number;
  readonly expected: ReadonlySet<number>;
  readonly results: WorkerReload[];
  readonly timer: NodeJS.Timeout;
}

/** The primary of a serving cluster: starts, restarts and stops the workers and answers their cluster-wide questions. */
export class ServingCluster {
  private readonly slots: Slot[] = [];
  private readonly aggregator = new AggregatorRegistry();
  private readonly rounds = new Map<number, ReloadRound>();
  private nextRound = 0;
  private closing: Promise<void> | undefined;
  private readonly restartTimers = new Set<NodeJS.Timeout>();
  /** Every worker listened once: from then on a worker that exits is started again. */
  private started = false;
  /** Workers started again after they exited. */
  restarts = 0;
  /** `http://host:port`, the port every worker listens on. */
  url = '';

  private constructor(private readonly options: ServingClusterOptions) {}

  /** Forks the workers and resolves once every one listens; a worker that exits before it listens fails the start (the others are stopped). */
  static async start(options: ServingClusterOptions): Promise<ServingCluster> {
    if (!cluster.isPrimary) throw new ConfigError('a serving cluster is started from a primary process, not from one of its workers');
    if (!Number.isInteger(options.workers) || options.workers < 1) throw new ConfigError(`serving workers: expected an integer >= 1, got ${JSON.stringify(options.workers)}`);
    const self = new ServingCluster(options);
    cluster.setupPrimary({
      exec: options.exec ?? process.argv[1],
      args: [...(options.args ?? process.argv.slice(2))],
      execArgv: [...(options.execArgv ?? process.execArgv)],
    });
    const started = Array.from({ length: options.workers }, (_, index) => self.fork(index));
    const timeoutMs = options.startTimeoutMs ?? 600_000;
    let timer: NodeJS.Timeout | undefined;
    try {
      const urls = await Promise.race([
        Promise.all(started),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new StreamrecError(`serving workers did not all listen within ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
      self.url = urls[0] as string;
      self.started = true;
    } catch (error) {
      await self.close();
      throw error;
    } finally {
      clearTimeout(timer);
    }
    log.info({ workers: options.workers, url: self.url }, 'serving workers listening');
    return self;
  }

  get workers(): number {
    return this.slots.length;
  }

  /** The workers' process ids, by slot. */
  get pids(): number[] {
    return this.slots.map((s) => s.worker.process.pid ?? -1);
  }

  /** Stops every worker (each drains its requests in flight, up to the grace period) and resolves when all have exited. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const t of this.restartTimers) clearTimeout(t);
      this.restartTimers.clear();
      await Promise.all(
        this.slots.map(
          ({ worker }) =>
            new Promise<void>((resolve) => {
              if (worker.isDead()) return resolve();
              const kill = setTimeout(() => {
                log.warn({ workerPid: worker.process.pid }, 'a serving worker did not stop within the grace period; killing it');
                worker.process.kill('SIGKILL');
              }, this.options.shutdownGraceMs + 5_000);
              worker.once('exit', () => {
                clearTimeout(kill);
                resolve();
              });
              if (worker.isConnected()) worker.send({ streamrec: 'stop' } satisfies ToWorker);
              else worker.process.kill('SIGTERM');
            }),
        ),
      );
      for (const round of this.rounds.values()) clearTimeout(round.timer);
      this.rounds.clear();
    })();
    return this.closing;
  }

  /** Starts the worker of slot `index`; resolves with its URL once it listens. */
  private fork(index: number): Promise<string> {
    return new Promise<string>((resolve, reject) => {
      const worker = cluster.fork({ [WORKER_ENV]: String(index) });
      const previous = this.slots[index];
      const slot: Slot = { worker, startedAt: Date.now(), delay: previous?.delay ?? this.options.restartDelayMs ?? 1_000, listening: false };
      this.slots[index] = slot;
      worker.on('message', (message: unknown) => {
        const own = tagged<ToPrimary>(message);
        if (!own) {
          const type = (message as { type?: unknown } | null)?.type;
          if (typeof type === 'string' && type.startsWith('prom-client:')) return;
          this.options.onMessage?.(index, message);
          return;
        }
        if (own.streamrec === 'ready') {
          slot.listening = true;
          resolve(own.url);
        } else this.answer(worker, index, own);
      });
      worker.on('exit', (code, signal) => {
        if (!slot.listening) reject(new StreamrecError(`serving worker ${index} exited (${signal ?? `code ${code}`}) before it listened; its output above says why`));
        // At start a worker that fails fails the start; later ones are started again.
        if (this.closing || !this.started || this.slots[index] !== slot) return;
        const lived = Date.now() - slot.startedAt;
        const base = this.options.restartDelayMs ?? 1_000;
        // The delay doubles each time a worker of this slot dies young, and is back to the base after one that lived.
        const delay = lived < YOUNG_MS ? slot.delay : base;
        slot.delay = Math.min(delay * 2, MAX_RESTART_DELAY_MS);
        log.error({ worker: index, workerPid: worker.process.pid, code, signal, livedMs: lived, restartInMs: delay }, 'a serving worker exited; starting it again');
        const timer = setTimeout(() => {
          this.restartTimers.delete(timer);
          if (this.closing) return;
          this.restarts++;
          this.fork(index).then(
            () => log.info({ worker: index, workerPid: this.slots[index]?.worker.process.pid }, 'the serving worker is back'),
            (error: unknown) => log.error({ err: error, worker: index }, 'the serving worker could not be started again'),
          );
        }, delay);
        this.restartTimers.add(timer);
      });
    });
  }

  private answer(worker: Worker, index: number, message: Exclude<ToPrimary, { streamrec: 'ready' }>): void {
    const send = (reply: ToWorker): void => {
      if (worker.isConnected()) worker.send(reply);
    };
    switch (message.streamrec) {
      case 'metrics':
        this.aggregator.clusterMetrics().then(
          (text) => send({ streamrec: 'metrics', id: message.id, text }),
          (error: unknown) => send({ streamrec: 'metrics', id: message.id, error: error instanceof Error ? error.message : String(error) }),
        );
        return;
      case 'reload': {
        const id = this.nextRound++;
        const live = this.slots.map((s, i) => [s, i] as const).filter(([s]) => s.listening && s.worker.isConnected());
        const round: ReloadRound = {
          asker: worker,
          askerId: message.id,
          expected: new Set(live.map(([, i]) => i)),
          results: [],
          timer: setTimeout(() => this.finishRound(id), ASK_TIMEOUT_MS - 1_000),
        };
        this.rounds.set(id, round);
        for (const [s] of live) s.worker.send({ streamrec: 'sync', id } satisfies ToWorker);
        if (live.length === 0) this.finishRound(id);
        return;
      }
      case 'synced': {
        const round = this.rounds.get(message.id);
        if (!round) return;
        round.results.push({ ...message.result, worker: index });
        if (round.results.length >= round.expected.size) this.finishRound(message.id);
        return;
      }
    }
  }

  /** Answers the worker that asked for a reload with every worker's result (a worker that did not answer in time is reported as such). */
  private finishRound(id: number): void {
    const round = this.rounds.get(id);
    if (!round) return;
    this.rounds.delete(id);
    clearTimeout(round.timer);
    const answered = new Set(round.results.map((r) => r.worker));
    const results = [...round.results];
    for (const i of round.expected) {
      if (!answered.has(i)) results.push({ worker: i, pid: this.slots[i]?.worker.process.pid ?? -1, outcome: { kind: 'error', error: 'no answer in time' }, version: null });
    }
    results.sort((a, b) => a.worker - b.worker);
    if (round.asker.isConnected()) round.asker.send({ streamrec: 'reloaded', id: round.askerId, results } satisfies ToWorker);
  }
}

/** This process's slot when it is a serving worker of a {@link ServingCluster}, else undefined. */
export function servingWorkerIndex(): number | undefined {
  const value = process.env[WORKER_ENV];
  return cluster.isWorker && value !== undefined && /^\d+$/.test(value) ? Number(value) : undefined;
}

/** What a worker's server needs from the cluster (serving/server.ts). */
export interface ClusterLink {
  readonly worker: number;
  /** Every worker's metrics, aggregated (Prometheus text). */
  metrics(): Promise<string>;
  /** Makes every worker check the registry now; each one's outcome. */
  reloadAll(): Promise<readonly WorkerReload[]>;
}

/**
 * The worker side of a serving cluster: answers the primary's questions (its metrics, a registry
 * check), asks it the cluster-wide ones, and stops when told (or when the primary is gone). A
 * SIGINT is left to the primary (a terminal's Ctrl-C reaches every process of the group); a
 * SIGTERM sent to the worker itself stops it gracefully, and the primary starts it again.
 */
export class ClusterMember implements ClusterLink {
  private nextId = 0;
  private readonly pending = new Map<number, { resolve: (value: never) => void; reject: (error: Error) => void; timer: NodeJS.Timeout }>();
  private stopping = false;

  constructor(
    readonly worker: number,
    private readonly hooks: {
      readonly registry: Registry;
      /** Checks the model registry now (ModelHolder.syncWith with retry). */
      readonly sync: () => Promise<SwapOutcome>;
      readonly version: () => number | null;
      /** Closes the server (drains requests in flight). */
      readonly close: () => Promise<void>;
    },
  ) {
    AggregatorRegistry.setRegistries([hooks.registry]);
    // Its constructor installs prom-client's answer to the primary's metrics requests in this worker.
    new AggregatorRegistry();
    process.on('message', (message: unknown) => this.receive(message));
    process.on('disconnect', () => this.stop('the primary is gone'));
    process.on('SIGINT', () => log.debug({ worker }, 'SIGINT left to the primary'));
    process.on('SIGTERM', () => this.stop('SIGTERM'));
  }

  /** Tells the primary this worker listens. */
  listening(url: string): void {
    this.send({ streamrec: 'ready', url });
  }

  metrics(): Promise<string> {
    return this.ask<string>('metrics');
  }

  reloadAll(): Promise<readonly WorkerReload[]> {
    return this.ask<readonly WorkerReload[]>('reload');
  }

  private send(message: ToPrimary): void {
    if (process.connected) process.send?.(message);
  }

  private ask<T>(kind: 'metrics' | 'reload'): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`the serving cluster's primary did not answer a ${kind} request within ${ASK_TIMEOUT_MS} ms`));
      }, ASK_TIMEOUT_MS);
      this.pending.set(id, { resolve: resolve as (value: never) => void, reject, timer });
      this.send({ streamrec: kind, id });
    });
  }

  private receive(raw: unknown): void {
    const message = tagged<ToWorker>(raw);
    if (!message) return;
    switch (message.streamrec) {
      case 'stop':
        this.stop('the primary stops the cluster');
        return;
      case 'sync':
        void this.hooks.sync().then(
          (outcome) => this.send({ streamrec: 'synced', id: message.id, result: { worker: this.worker, pid: process.pid, outcome, version: this.hooks.version() } }),
          (error: unknown) =>
            this.send({ streamrec: 'synced', id: message.id, result: { worker: this.worker, pid: process.pid, outcome: { kind: 'error', error: error instanceof Error ? error.message : String(error) }, version: this.hooks.version() } }),
        );
        return;
      case 'metrics':
      case 'reloaded': {
        const waiting = this.pending.get(message.id);
        if (!waiting) return;
        this.pending.delete(message.id);
        clearTimeout(waiting.timer);
        if (message.streamrec === 'metrics') {
          if (message.error !== undefined) waiting.reject(new Error(`cluster metrics: ${message.error}`));
          else waiting.resolve(message.text as never);
        } else waiting.resolve(message.results as never);
        return;
      }
    }
  }

  private stop(why: string): void {
    if (this.stopping) return;
    this.stopping = true;
    log.info({ worker: this.worker, why }, 'serving worker stopping');
    for (const { timer, reject } of this.pending.values()) {
      clearTimeout(timer);
      reject(new Error('the serving worker is stopping'));
    }
    this.pending.clear();
    this.hooks.close().then(
      () => process.exit(0),
      (error: unknown) => {
        log.error({ err: error, worker: this.worker }, 'serving worker did not close cleanly');
        process.exit(1);
      },
    );
  }
}
