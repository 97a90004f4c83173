/**
 * Serving on several cores: `streamrec serve --workers N` runs N server processes (node:cluster)
 * behind one port. onnxruntime-node, hnswlib and the ranker run on a server's event loop, so one
 * process answers on one core; the primary accepts connections and hands them to the workers in
 * turn (node's round-robin scheduling), and each worker is a whole server: it loads the live model
 * itself, follows the registry and (with `--histories kafka`) the history changelog itself, as
 * replicas side by side do.
 *
 * What the workers share goes through the primary over IPC:
 * - `/metrics` answered by any worker is the cluster's: the primary collects the registry of
 *   every worker that listens (prom-client's `AggregatorRegistry.aggregate`), each series labelled
 *   with its `worker`, so that a worker's counters restarting with it are a counter reset of its
 *   own series (sum them in PromQL) and never a total that goes backwards. A worker still
 *   loading, or one that does not answer within a few seconds, is left out of that scrape.
 * - `/admin/reload` answered by any worker makes every worker check the registry and reports each
 *   one's outcome.
 * - Model loads one worker at a time (`serving.swapOneAtATime`): a worker that listens asks the
 *   primary before it loads a new version and tells it when done, so that the others keep their
 *   core for requests while it loads (at startup, before they listen, all load at once).
 * - A worker that exits is started again (after a delay that doubles while workers die young);
 *   closing the cluster stops every worker gracefully (each drains its requests in flight).
 */
import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry, type MetricObjectWithValues, type MetricValue, type Registry } from 'prom-client';
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

/** The cluster-wide questions a worker can ask (the primary asks every worker in a round and answers with all replies). */
type Question = 'metrics' | 'reload';
type WorkerMetrics = MetricObjectWithValues<MetricValue<string>>[];

/** Messages of the cluster, tagged with `streamrec`, so that others on the channel (a benchmark's) pass by. */
type ToPrimary =
  | { readonly streamrec: 'ready'; readonly url: string }
  /** A worker asks a question of the whole cluster. */
  | { readonly streamrec: 'ask'; readonly id: number; readonly question: Question }
  /** A worker's own reply in a round: its metrics, or its registry check. */
  | { readonly streamrec: 'reply'; readonly round: number; readonly value: WorkerMetrics | WorkerReload }
  /** A worker asks for the cluster's load turn (answered with its id when granted), or gives it back. */
  | { readonly streamrec: 'load'; readonly id: number; readonly phase: 'begin' | 'end' };
type ToWorker =
  | { readonly streamrec: 'stop' }
  | { readonly streamrec: 'round'; readonly round: number; readonly question: Question }
  | { readonly streamrec: 'answer'; readonly id: number; readonly text?: string; readonly results?: readonly WorkerReload[]; readonly error?: string };

function tagged<T extends { streamrec: string }>(message: unknown): T | undefined {
  return message !== null && typeof message === 'object' && typeof (message as { streamrec?: unknown }).streamrec === 'string' ? (message as T) : undefined;
}

/**
 * How long the primary waits for the workers' replies in a round: a worker's metrics; its
 * registry check, which loads a new version when there is one (minutes at a large catalog, as a
 * reload of one server waits for its swap).
 */
const ROUND_MS: Readonly<Record<Question, number>> = { metrics: 5_000, reload: 600_000 };
/** How long a worker waits for the primary's answer before failing the request: the round and a margin. */
const ASK_MS: Readonly<Record<Question, number>> = { metrics: ROUND_MS.metrics + 5_000, reload: ROUND_MS.reload + 5_000 };
/** A worker that lived shorter than this before it exited doubles the restart delay. */
const YOUNG_MS = 60_000;
/** How long a worker waits for its load turn before it loads anyway (a load at 100,000 items that builds its indexes takes minutes). */
const LOAD_TURN_MS = 600_000;
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

interface Round {
  /** The slots that were asked and have neither replied nor exited. */
  readonly expected: Set<number>;
  readonly replies: Map<number, WorkerMetrics | WorkerReload>;
  readonly done: () => void;
  readonly timer: NodeJS.Timeout;
}

/** The primary of a serving cluster: starts, restarts and stops the workers and answers their cluster-wide questions. */
export class ServingCluster {
  private readonly slots: Slot[] = [];
  private readonly rounds = new Map<number, Round>();
  private nextRound = 0;
  private closing: Promise<void> | undefined;
  private readonly restartTimers = new Set<NodeJS.Timeout>();
  /** Every worker listened once: from then on a worker that exits is started again. */
  private started = false;
  /** The slot whose worker is loading a model version, and the workers waiting for their turn (slot, request id), in order. */
  private loading: number | undefined;
  private readonly loadQueue: Array<{ readonly index: number; readonly worker: Worker; readonly id: number }> = [];
  /** Fails {@link start} (until it completes). */
  private failStart: (error: Error) => void = () => undefined;
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
        // A worker that listened and then exited while the others were still starting fails the start too.
        new Promise<never>((_, reject) => (self.failStart = reject)),
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
          (slot) =>
            new Promise<void>((resolve) => {
              const { worker } = slot;
              if (worker.isDead()) return resolve();
              const kill = setTimeout(() => {
                log.warn({ workerPid: worker.process.pid }, 'a serving worker did not stop within the grace period; killing it');
                worker.process.kill('SIGKILL');
              }, this.options.shutdownGraceMs + 5_000);
              worker.once('exit', () => {
                clearTimeout(kill);
                resolve();
              });
              // A worker still starting may not listen to messages yet: a SIGTERM stops it either way.
              if (slot.listening && worker.isConnected()) worker.send({ streamrec: 'stop' } satisfies ToWorker);
              else worker.process.kill('SIGTERM');
            }),
        ),
      );
      for (const round of [...this.rounds.values()]) round.done();
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
          this.options.onMessage?.(index, message);
          return;
        }
        if (own.streamrec === 'ready') {
          slot.listening = true;
          resolve(own.url);
        } else this.answer(worker, index, own);
      });
      worker.on('exit', (code, signal) => {
        const how = signal ?? `code ${code}`;
        if (!slot.listening) reject(new StreamrecError(`serving worker ${index} exited (${how}) before it listened; its output above says why`));
        else if (!this.started) this.failStart(new StreamrecError(`serving worker ${index} exited (${how}) while the others were starting; its output above says why`));
        slot.listening = false;
        // Its load turn, held or asked for, passes on.
        this.endLoad(index);
        // The rounds under way stop waiting for it.
        for (const round of [...this.rounds.values()]) {
          round.expected.delete(index);
          if (round.replies.size >= round.expected.size) round.done();
        }
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
    if (message.streamrec === 'load') {
      if (message.phase === 'end') this.endLoad(index);
      else {
        this.loadQueue.push({ index, worker, id: message.id });
        this.nextLoad();
      }
      return;
    }
    if (message.streamrec === 'reply') {
      const round = this.rounds.get(message.round);
      if (!round) return; // too late
      round.replies.set(index, message.value);
      if (round.replies.size >= round.expected.size) round.done();
      return;
    }
    const reply = (answer: ToWorker): void => {
      if (worker.isConnected()) worker.send(answer);
    };
    this.ask(message.question)
      .then(async (replies) => {
        if (message.question === 'metrics') {
          const registries = [...replies.values()] as WorkerMetrics[];
          reply({ streamrec: 'answer', id: message.id, text: await AggregatorRegistry.aggregate(registries).metrics() });
          return;
        }
        const results: WorkerReload[] = [];
        for (const [i, slot] of this.slots.entries()) {
          const got = replies.get(i) as WorkerReload | undefined;
          const error = slot.listening ? 'no answer in time' : slot.worker.isDead() ? 'exited: being started again' : 'starting: not listening yet';
          results.push(got ? { ...got, worker: i } : { worker: i, pid: slot.worker.process.pid ?? -1, outcome: { kind: 'error', error }, version: null });
        }
        reply({ streamrec: 'answer', id: message.id, results });
      })
      .catch((error: unknown) => {
        log.error({ err: error, question: message.question }, 'answering a serving worker failed');
        reply({ streamrec: 'answer', id: message.id, error: error instanceof Error ? error.message : String(error) });
      });
  }

  /** Slot `index` no longer loads nor waits to (its load ended, or it exited); the next in line goes. */
  private endLoad(index: number): void {
    for (let i = this.loadQueue.length - 1; i >= 0; i--) if (this.loadQueue[i]?.index === index) this.loadQueue.splice(i, 1);
    if (this.loading === index) this.loading = undefined;
    this.nextLoad();
  }

  /** Grants the load turn to the first worker waiting, when no worker holds it. */
  private nextLoad(): void {
    while (this.loading === undefined) {
      const next = this.loadQueue.shift();
      if (!next) return;
      if (!next.worker.isConnected()) continue;
      this.loading = next.index;
      next.worker.send({ streamrec: 'answer', id: next.id } satisfies ToWorker);
    }
  }

  /** Asks every worker that listens `question`; resolves with the replies by slot once all have replied or the round's time is up. */
  private ask(question: Question): Promise<Map<number, WorkerMetrics | WorkerReload>> {
    return new Promise((resolve) => {
      const id = this.nextRound++;
      const live = [...this.slots.entries()].filter(([, s]) => s.listening && s.worker.isConnected());
      const replies = new Map<number, WorkerMetrics | WorkerReload>();
      const done = (): void => {
        const round = this.rounds.get(id);
        if (!round) return;
        clearTimeout(round.timer);
        this.rounds.delete(id);
        resolve(replies);
      };
      this.rounds.set(id, { expected: new Set(live.map(([i]) => i)), replies, done, timer: setTimeout(done, ROUND_MS[question]) });
      for (const [, s] of live) s.worker.send({ streamrec: 'round', round: id, question } satisfies ToWorker);
      if (live.length === 0) done();
    });
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
 * check), asks it the cluster-wide ones, and stops when told, draining its requests in flight. A
 * SIGINT is left to the primary (a terminal's Ctrl-C reaches every process of the group); a
 * SIGTERM sent to the worker itself stops it gracefully, and the primary starts it again.
 */
export class ClusterMember implements ClusterLink {
  private nextId = 0;
  private listened = false;
  private readonly pending = new Map<number, { resolve: (answer: Extract<ToWorker, { streamrec: 'answer' }>) => void; reject: (error: Error) => void; timer: NodeJS.Timeout }>();
  private stopping = false;

  constructor(
    readonly worker: number,
    private readonly hooks: {
      /** This worker's metrics, sent to the primary when it collects. */
      readonly registry: Registry;
      /** Checks the model registry now (ModelHolder.syncWith with retry). */
      readonly sync: () => Promise<SwapOutcome>;
      readonly version: () => number | null;
      /** Closes the server (drains requests in flight). */
      readonly close: () => Promise<void>;
    },
  ) {
    // Each series names its worker: the primary puts the workers' registries side by side.
    hooks.registry.setDefaultLabels({ worker: String(worker) });
    process.on('message', (message: unknown) => this.receive(message));
    // A primary that is gone without stopping it (killed): node's cluster module exits the worker
    // itself when the channel closes, without this graceful path.
    process.on('SIGINT', () => log.debug({ worker }, 'SIGINT left to the primary'));
    process.on('SIGTERM', () => this.stop('SIGTERM'));
  }

  /** Tells the primary this worker listens. */
  listening(url: string): void {
    this.listened = true;
    this.send({ streamrec: 'ready', url });
  }

  /**
   * Runs `load` (a model version's load) in the cluster's load turn: once this worker listens, it
   * waits until no other worker loads, so that they keep their cores for requests meanwhile
   * (before it listens, at startup, it loads at once). Without an answer from the primary within
   * {@link LOAD_TURN_MS} it loads anyway.
   */
  async oneLoadAtATime<T>(load: () => Promise<T>): Promise<T> {
    if (!this.listened || !process.connected) return load();
    const id = this.nextId++;
    const started = Date.now();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        log.warn({ worker: this.worker, waitedMs: LOAD_TURN_MS }, 'no load turn from the primary in time: loading anyway');
        resolve();
      }, LOAD_TURN_MS);
      this.pending.set(id, { resolve: () => resolve(), reject: () => resolve(), timer });
      this.send({ streamrec: 'load', id, phase: 'begin' });
    });
    const waitedMs = Date.now() - started;
    const loading = Date.now();
    try {
      return await load();
    } finally {
      this.send({ streamrec: 'load', id, phase: 'end' });
      log.info({ worker: this.worker, waitedMs, loadMs: Date.now() - loading }, 'model version loaded in the load turn');
    }
  }

  async metrics(): Promise<string> {
    return (await this.ask('metrics')).text ?? '';
  }

  async reloadAll(): Promise<readonly WorkerReload[]> {
    return (await this.ask('reload')).results ?? [];
  }

  private send(message: ToPrimary): void {
    if (process.connected) process.send?.(message);
  }

  private ask(question: Question): Promise<Extract<ToWorker, { streamrec: 'answer' }>> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`the serving cluster's primary did not answer a ${question} request within ${ASK_MS[question]} ms`));
      }, ASK_MS[question]);
      this.pending.set(id, { resolve, reject, timer });
      this.send({ streamrec: 'ask', id, question });
    });
  }

  private receive(raw: unknown): void {
    const message = tagged<ToWorker>(raw);
    if (!message) return;
    if (message.streamrec === 'stop') return this.stop('the primary stops the cluster');
    if (message.streamrec === 'answer') {
      const waiting = this.pending.get(message.id);
      if (!waiting) return;
      this.pending.delete(message.id);
      clearTimeout(waiting.timer);
      if (message.error !== undefined) waiting.reject(new Error(`the serving cluster's primary could not answer: ${message.error}`));
      else waiting.resolve(message);
      return;
    }
    const reply = (value: WorkerMetrics | WorkerReload): void => this.send({ streamrec: 'reply', round: message.round, value });
    if (message.question === 'metrics') {
      void this.hooks.registry.getMetricsAsJSON().then(reply, (error: unknown) => log.error({ err: error }, 'collecting this worker\'s metrics failed'));
      return;
    }
    const result = (outcome: WorkerReload['outcome']): WorkerReload => ({ worker: this.worker, pid: process.pid, outcome, version: this.hooks.version() });
    void this.hooks.sync().then(
      (outcome) => reply(result(outcome)),
      (error: unknown) => reply(result({ kind: 'error', error: error instanceof Error ? error.message : String(error) })),
    );
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
