/**
 * `npm run bench -- serving [--catalogs scientific,synthetic] [--items 100000] [--users 5000]
 *   [--duration 15] [--connections 8] [--rate 2000] [--engine auto|onnx|tfjs] [--onnx-threads 0] [--recall-users 1000]
 *   [--index auto|exact|hnsw] [--ef 256] [--candidates 100] [--prepare true|false] [--workers 2] [--seed 7] [--work-dir <dir>]
 *   [--validate-responses true|false]`
 *
 * The serving API under load, as users run it: `streamrec serve`'s `startServing` in its own
 * process (bench/_servingServer.ts) on loopback, the users' histories in memory, the live model
 * from a directory registry; a load generator (autocannon, as a library, in this process) on
 * `GET /v1/users/{id}/recommendations?k=10` cycling through users with real histories. With
 * `--workers N` (default 2, the cores the targets name) the server is N processes behind its one
 * port, as `streamrec serve --workers N` runs it (serving/cluster.ts); `--workers 1` is one process.
 *
 * For each catalog (Amazon Scientific, 4,385 items; a synthetic world with `--items` items and
 * `--users` users): a default rebuild, CCFRec trained for one epoch (warm-up 50, last 10 items,
 * text prior tuned on validation; above 20,000 items 2,048 sampled negatives per batch instead of
 * the full softmax) and published; a fine-tuned child of it (one micro-epoch on
 * the newest tenth of the users) kept aside. Then:
 * - `ann_recall_at_10`: the served top-10 (serving's index choice, exact below 20,000 items) against
 *   exact full ranking, for `--recall-users` users; on the synthetic catalog the index is HNSW.
 * - user vectors/s of the ONNX and TF.js engines at batch 1 (one request's work).
 * - a steady run of `--duration` s: p50/p99 latency (measured per response, sub-ms), requests/s,
 *   errors (connection errors, timeouts and non-2xx answers) with `--connections` connections each
 *   sending its next request as soon as the last is answered (the server saturated: its most
 *   requests/s; the latency is mostly queueing, `connections / rps` on average); then one
 *   connection alone (a request's latency without queueing) for half as long.
 * - a run of `--duration` s at a fixed offered rate (`--rate` requests/s, open loop:
 *   bench/_openLoop.ts in a process of its own, 32 connections, after a warm-up second at the rate that is not
 *   measured): the latency users see at that load, counted from when each request was due, so waiting for a
 *   slow server counts. The top-level `p50_ms`/`p99_ms`
 *   are this run's (`latency_at_rps` says the rate), `rps` the saturated run's. No such run when
 *   the saturated server answered fewer requests/s than the rate (then p50/p99 are the saturated run's).
 * - a run of `--duration` s with a hot swap: the fine-tuned child is published a third of the way
 *   in (with `--prepare`, the default, prepared for serving first in a process of its own, as the
 *   trainer or `publish --prepare-serving` does it; not in this process, whose load generator it
 *   would stall); the server loads it beside the current version and switches. `swap_errors` counts errors
 *   in that run, and one more when the swap did not happen: the version failed to load, or no swap
 *   was seen before the run ended (`swap.outcome` says which); the swap's load time and the latency
 *   of that run are reported too.
 * - a run at a fixed offered rate (`--swap-rate` requests/s, default 1,000, open loop as above)
 *   with a hot swap in it: the trained checkpoint published again a fifth of the way in (a new
 *   version whose item vectors the live one does not hold, the text vectors the same, as a
 *   micro-epoch's publication is), for twice `--duration` (at least 20 s): the latency users see
 *   while the server loads a version beside their requests (`swap_at_rate`: p99, the slowest
 *   answer, answers over 50 ms, the load's time and its steps' as the last worker to swap logged
 *   them). Its errors, and its swap when it did not happen (`swap_at_rate.outcome`), count in `swap_errors` too.
 *
 * The last stdout line is one JSON object: the synthetic catalog's numbers at the top level, the
 * Scientific ones under `"scientific"` (each catalog is skipped with a note when `--catalogs`
 * leaves it out, and Scientific when the dataset is absent). `--work-dir` keeps each catalog's
 * stores (rebuild, checkpoints) there and reuses them on the next run. The server process gets
 * the node flags in STREAMREC_BENCH_SERVER_NODE_ARGS (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import { ConfigError } from '../errors';
import { datasetsRoot, loadDataset, type LoadedDataset } from '../datasets';
import { ArtifactStore } from '../infra/artifacts';
import { initTf } from '../infra/tf';
import { AppConfig, openRegistry, publishCheckpoint, runEvaluateJob, runFineTuneJob, runRebuildJob, runTrainJob, trainerConfigFromFlags } from '../jobs';
import type { PublishEvaluation } from '../infra/registry';
import { setLogLevel } from '../logging';
import { Random } from '../random';
import { AnnConfig, ServingConfig } from '../schemas/serving';
import { AnnIndexCache, ModelVersion, TfjsUserEncoder } from '../serving';
import type { ServerChildArgs, ServerChildMessage } from './_servingServer';
import { numberFlag, parseFlags } from './_flags';
import { openLoopInChild } from './_openLoop';
import { processTree, readAll, schedstatRates } from './_schedstat';
import { percentile, throughput } from './_measure';

const KNOWN = new Set(['catalogs', 'items', 'users', 'duration', 'connections', 'rate', 'engine', 'recall-users', 'seed', 'work-dir', 'onnx-threads', 'index', 'prepare', 'ef', 'candidates', 'workers', 'swap-rate', 'validate-responses']);

interface BenchOptions {
  readonly duration: number;
  readonly connections: number;
  readonly engine: string;
  /** Whether the swapped-in version is prepared for serving before it is published (`publish --prepare-serving`). */
  readonly prepare: boolean;
  /** serving.validateResponses of the server (zod-checks every answer). */
  readonly validateResponses: boolean;
  /**
   * serving.ann.hnsw.ef of the server (and of the recall check's version); default: the serving
   * config's. Only similar-item searches run at it: ranking's candidate searches run at ef =
   * `candidates` (serving/ranker.ts), so it does not change the recommendations measured here.
   */
  readonly ef?: number;
  /** Candidates per index before exact rescoring (serving.candidates); default: the serving config's. */
  readonly candidates?: number;
  /** The server's index: auto (exact below 20,000 items), exact or hnsw. */
  readonly index: 'auto' | 'exact' | 'hnsw';
  /** ONNX Runtime intra-op threads of the server (0: its default). */
  readonly onnxThreads: number;
  /** Server processes behind the port (serving.workers: `streamrec serve --workers`). */
  readonly workers: number;
  /** Offered requests/s of the open-loop run (0: no such run). */
  readonly rate: number;
  /** Offered requests/s of the open-loop run with a hot swap (0: no such run). */
  readonly swapRate: number;
  readonly recallUsers: number;
  readonly seed: number;
  /** Where the stores are kept between runs (default: a temporary directory, removed). */
  readonly workDir?: string;
}
const MAX_HISTORY = 10;
/** The swap run ends this long after it started at the latest, swapped or not. */
const SWAP_RUN_LIMIT_S = 300;
const log = (text: string): void => void process.stderr.write(`[bench serving ${new Date().toISOString().slice(11, 19)}] ${text}\n`);
const round = (v: number, places = 3): number => Math.round(v * 10 ** places) / 10 ** places;

interface LoadResult {
  readonly requests: number;
  readonly seconds: number;
  readonly p50_ms: number;
  readonly p90_ms: number;
  readonly p99_ms: number;
  readonly max_ms: number;
  readonly rps: number;
  readonly errors: number;
  readonly non2xx: number;
  readonly timeouts: number;
  /** Connection errors by code. */
  readonly errorKinds: Record<string, number>;
  /** How many 2xx answers came from each model version. */
  readonly versions: Record<string, number>;
}

/** `GET /v1/users/{id}/recommendations?k=10` for `seconds`, the users in turn; latency of every response. */
/**
 * `during` is called every 100 ms with the elapsed time; it returns true to end the run early
 * (the run lasts at most `seconds`).
 */
async function load(url: string, users: readonly string[], seconds: number, connections: number, during?: (elapsedMs: number) => boolean | void): Promise<LoadResult> {
  let next = 0;
  const latencies: number[] = [];
  const versions: Record<string, number> = {};
  const errorKinds: Record<string, number> = {};
  let errors = 0;
  let non2xx = 0;
  const started = performance.now();
  let finished!: (result: autocannon.Result) => void;
  let failed!: (error: unknown) => void;
  const done = new Promise<autocannon.Result>((resolve, reject) => {
    finished = resolve;
    failed = reject;
  });
  const instance = autocannon(
    {
    url,
    connections,
    duration: seconds,
    timeout: 10,
    requests: [
      {
        method: 'GET',
        setupRequest: (request) => ({ ...request, path: recommendationsPath(users[next++ % users.length] as string) }),
        onResponse: (status, body) => {
          if (status < 200 || status >= 300) return;
          const match = /"version":(\d+)/.exec(body);
          const key = match ? (match[1] as string) : 'none';
          versions[key] = (versions[key] ?? 0) + 1;
        },
      },
    ],
    },
    (error, result) => (error ? failed(error) : finished(result)),
  );
  instance.on('response', (_client, status, _bytes, ms) => {
    latencies.push(ms);
    if (status < 200 || status >= 300) non2xx++;
  });
  instance.on('reqError', (error: Error & { code?: string }) => {
    errors++;
    const kind = error.code ?? error.message;
    errorKinds[kind] = (errorKinds[kind] ?? 0) + 1;
  });
  const ticker = during
    ? setInterval(() => {
        if (during(performance.now() - started) === true) instance.stop();
      }, 100)
    : undefined;
  try {
    const result = await done;
    errors += result.timeouts;
    const sorted = Float64Array.from(latencies).sort();
    return {
      requests: latencies.length,
      seconds: (performance.now() - started) / 1000,
      p50_ms: round(percentile(sorted, 0.5)),
      p90_ms: round(percentile(sorted, 0.9)),
      p99_ms: round(percentile(sorted, 0.99)),
      max_ms: round(sorted[sorted.length - 1] ?? Number.NaN),
      rps: Math.round(latencies.length / ((performance.now() - started) / 1000)),
      errors: errors + non2xx,
      non2xx,
      timeouts: result.timeouts,
      errorKinds,
      versions,
    };
  } finally {
    if (ticker) clearInterval(ticker);
  }
}

/** The request every run sends for a user: its top 10. */
function recommendationsPath(userId: string): string {
  return `/v1/users/${encodeURIComponent(userId)}/recommendations?k=10`;
}

/** The open-loop run: `rate` requests/s offered for `seconds`, the users in turn. */
async function loadAtRate(url: string, users: readonly string[], rate: number, seconds: number, serverPid: number | undefined): Promise<Record<string, unknown>> {
  const { hostname, port } = new URL(url);
  const paths = users.map(recommendationsPath);
  // The server's processes (a cluster's primary and workers): how much their main threads ran and
  // waited for a core over the run (Linux; the load generator, forked below, is not among them).
  const pids = serverPid === undefined ? [] : processTree(serverPid);
  const before = readAll(pids);
  const started = performance.now();
  const r = await openLoopInChild({ host: hostname, port: Number(port), rate, seconds, connections: 32, paths });
  const scheduler = schedstatRates(before, readAll(pids), (performance.now() - started) / 1000).filter((p) => p.run_ms_per_s > 0);
  return {
    offered_rps: rate,
    rps: Math.round(r.completed / r.seconds),
    requests: r.offered,
    p50_ms: round(percentile(r.latencies, 0.5)),
    p90_ms: round(percentile(r.latencies, 0.9)),
    p99_ms: round(percentile(r.latencies, 0.99)),
    max_ms: round(r.latencies[r.latencies.length - 1] ?? Number.NaN),
    errors: r.errors + r.non2xx,
    ...(scheduler.length > 0 ? { server_threads: scheduler } : {}),
  };
}

/**
 * The open-loop run with a hot swap: `checkpoint` published (again) a fifth of the way into
 * `max(2 x duration, 20)` s at `swapRate` requests/s; the latency of every answer meanwhile.
 */
async function swapUnderOpenLoad(
  server: { readonly child: ChildProcess; readonly ready: { readonly url: string } },
  users: readonly string[],
  options: BenchOptions,
  registry: ReturnType<typeof openRegistry>,
  store: ArtifactStore,
  checkpoint: string,
): Promise<Record<string, unknown> & { readonly outcome: string; readonly errors: number }> {
  const { hostname, port } = new URL(server.ready.url);
  const paths = users.map(recommendationsPath);
  const seconds = Math.max(2 * options.duration, 20);
  const warmUpSeconds = 1;
  let swap: Extract<ServerChildMessage, { type: 'swapped' | 'swap_failed' }> | undefined;
  let version: number | undefined;
  const onMessage = (m: ServerChildMessage): void => {
    if ((m.type === 'swapped' && m.to === version) || (m.type === 'swap_failed' && m.version === version)) swap = m;
  };
  server.child.on('message', onMessage);
  const publishAt = warmUpSeconds + seconds / 5;
  const publishing = new Promise<void>((resolve, reject) => {
    setTimeout(() => {
      publishCheckpoint({ registry, store, checkpoint, reason: 'bench serving: hot swap under open load' }).then((r) => {
        if (r.published) version = r.model.version;
        log(`published ${checkpoint} again: ${r.published ? `version ${r.model.version}` : r.reason}`);
        resolve();
      }, reject);
    }, publishAt * 1000);
  });
  try {
    const r = await openLoopInChild({ host: hostname, port: Number(port), rate: options.swapRate, seconds, connections: 32, paths, warmUpSeconds });
    await publishing;
    const over50 = r.latencies.filter((ms) => ms > 50).length;
    return {
      offered_rps: options.swapRate,
      run_s: seconds,
      published_at_s: round(publishAt - warmUpSeconds, 1),
      outcome: swap?.type ?? 'unfinished',
      load_ms: swap?.type === 'swapped' ? Math.round(swap.durationMs) : null,
      load_steps_ms: swap?.type === 'swapped' ? swap.steps : null,
      requests: r.offered,
      p50_ms: round(percentile(r.latencies, 0.5)),
      p99_ms: round(percentile(r.latencies, 0.99)),
      max_ms: round(r.latencies[r.latencies.length - 1] ?? Number.NaN),
      over_50ms: over50,
      errors: r.errors + r.non2xx,
    };
  } finally {
    server.child.off('message', onMessage);
  }
}

/**
 * `swap_errors`: the failed requests of the runs with a hot swap, and one for each of their swaps
 * that did not happen (`outcome` other than `swapped`: the version failed to load, or no swap was
 * seen before the run ended), so that a swap that never completes cannot report 0.
 */
export function swapErrors(runs: ReadonlyArray<{ readonly errors: number; readonly outcome: string }>): number {
  return runs.reduce((sum, run) => sum + run.errors + (run.outcome === 'swapped' ? 0 : 1), 0);
}

/** Mean overlap of `served`'s top-10 with `exact`'s (full ranking), over `histories` (seen items excluded, as served). */
async function annRecall(served: ModelVersion, exact: ModelVersion, histories: string[][]): Promise<number> {
  let sum = 0;
  for (const history of histories) {
    const known = history.filter((id) => served.knows(id));
    const seen = [new Set(known)];
    const [a] = await served.recommend([known], 10, seen);
    const [b] = await exact.recommend([known], 10, seen);
    const want = new Set((b ?? []).map((i) => i.itemId));
    sum += (a ?? []).filter((i) => want.has(i.itemId)).length / Math.max(1, want.size);
  }
  return round(sum / Math.max(1, histories.length), 4);
}

/**
 * `prepareServing` of a checkpoint in a process of its own (bench/_prepareServing.ts), as the
 * trainer or `publish --prepare-serving` runs it beside the servers: in this process it would
 * stall the load generator. Resolves with the steps' milliseconds (a JSON line).
 */
function prepareInChild(configFile: string, checkpoint: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = fork(path.join(__dirname, '_prepareServing.ts'), [configFile, checkpoint], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
    let out = '';
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`preparing ${checkpoint} for serving exited with ${code}`))));
  });
}

function startServer(configFile: string, dataset: string): Promise<{ child: ChildProcess; ready: Extract<ServerChildMessage, { type: 'ready' }>; messages: ServerChildMessage[] }> {
  const args: ServerChildArgs = { configFile, dataset, maxHistory: MAX_HISTORY };
  const child = fork(path.join(__dirname, '_servingServer.ts'), [JSON.stringify(args)], { execArgv: ['--import', 'tsx', ...(process.env.STREAMREC_BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean)], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const messages: ServerChildMessage[] = [];
  return new Promise((resolve, reject) => {
    child.on('message', (message: ServerChildMessage) => {
      messages.push(message);
      if (message.type === 'ready') resolve({ child, ready: message, messages });
    });
    child.once('exit', (code) => reject(new Error(`the server process exited with ${code} before it was ready`)));
  });
}

async function stopServer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.send({ type: 'stop' });
  await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 30_000))]);
  if (child.exitCode === null) child.kill('SIGKILL');
}

interface Prepared {
  readonly spec: string;
  readonly trained: string;
  readonly tuned: string;
  readonly tunedEvaluation: PublishEvaluation;
  readonly setupS: Record<string, number>;
}

/**
 * The stores a catalog's runs need: a default rebuild, CCFRec trained for one epoch and a
 * fine-tuned child with its test evaluation. Kept in `<root>/prepared.json`, so that a
 * `--work-dir` run does this once.
 */
async function prepare(spec: string, root: string, config: AppConfig, dataset: LoadedDataset): Promise<Prepared> {
  const stateFile = path.join(root, 'prepared.json');
  if (existsSync(stateFile)) {
    const state = JSON.parse(readFileSync(stateFile, 'utf8')) as Prepared;
    if (state.spec === spec) {
      log(`reusing ${state.trained} and ${state.tuned} from ${stateFile}`);
      return state;
    }
  }
  const store = new ArtifactStore(config.artifacts.dir);
  let t0 = performance.now();
  await runRebuildJob(config, { source: { kind: 'dataset', dataset: spec } });
  const rebuild = round((performance.now() - t0) / 1000, 1);
  log(`rebuild ${rebuild} s`);
  t0 = performance.now();
  // Above 20,000 items a full softmax makes an epoch take most of an hour here: sampled negatives instead.
  const negatives = dataset.items.length > 20_000 ? { negatives: '2048' } : {};
  const trainer = trainerConfigFromFlags(config.trainer, 'ccfrec', { epochs: '1', warmup: '50', 'max-history': String(MAX_HISTORY), 'text-prior': '0.25,0.5,1', 'text-prior-last': '1,3', ...negatives });
  const trained = await runTrainJob({ config, trainer, source: { kind: 'dataset', dataset: spec }, dataset, writeRows: false });
  if (!trained.checkpointId) throw new Error('training wrote no checkpoint');
  const train = round((performance.now() - t0) / 1000, 1);
  const prior = trained.textPrior;
  log(`trained CCFRec 1 epoch in ${train} s: ${trained.checkpointId}, text prior ${prior ? `weight ${prior.weight}, last ${prior.lastItems}, ${prior.pooling}` : 'none'}`);
  // The version swapped in mid-run: one micro-epoch on the tenth of the users active last.
  t0 = performance.now();
  const newest = [...dataset.sequences].sort((a, b) => (b.timestamps.at(-1) ?? 0) - (a.timestamps.at(-1) ?? 0)).slice(0, Math.max(50, Math.round(dataset.sequences.length / 10)));
  const { split: _shipped, ...rest } = dataset;
  const tuned = await runFineTuneJob({ store, checkpoint: trained.checkpointId, dataset: { ...rest, sequences: newest }, train: { epochs: 1 } });
  const evaluated = await runEvaluateJob({ config, checkpoint: tuned.checkpointId, source: { kind: 'dataset', dataset: spec }, split: 'test', prior: { kind: 'tuned' }, writeRows: false });
  const fineTune = round((performance.now() - t0) / 1000, 1);
  log(`fine-tuned and evaluated ${tuned.checkpointId} in ${fineTune} s`);
  const state: Prepared = {
    spec,
    trained: trained.checkpointId,
    tuned: tuned.checkpointId,
    tunedEvaluation: { split: 'test', metrics: evaluated.result.metrics, users: evaluated.result.users },
    setupS: { rebuild, train, fineTune },
  };
  writeFileSync(stateFile, `${JSON.stringify(state, null, 2)}\n`);
  return state;
}

async function benchCatalog(spec: string, options: BenchOptions): Promise<Record<string, unknown>> {
  const root = options.workDir ? path.join(options.workDir, spec.replace(/[^A-Za-z0-9=,._-]/g, '_')) : mkdtempSync(path.join(tmpdir(), 'streamrec-bench-serving-'));
  mkdirSync(root, { recursive: true });
  try {
    const config = AppConfig.parse({
      artifacts: { dir: path.join(root, 'artifacts'), registryFile: path.join(root, 'artifacts', 'item-registry.json') },
      modelRegistry: { url: `dir:${path.join(root, 'registry')}` },
      serving: { port: 0, reloadPollMs: 200, validateResponses: options.validateResponses, engine: options.engine, onnxThreads: options.onnxThreads, workers: options.workers, ann: { index: options.index, ...(options.ef ? { hnsw: { ef: options.ef } } : {}) }, ...(options.candidates ? { candidates: options.candidates } : {}) },
    });
    const configFile = path.join(root, 'config.json');
    writeFileSync(configFile, JSON.stringify(config));
    const store = new ArtifactStore(config.artifacts.dir);
    const registry = openRegistry(config);
    let t0 = performance.now();
    const dataset = await loadDataset(spec);
    log(`${dataset.name}: ${dataset.items.length} items, ${dataset.sequences.length} users (${round((performance.now() - t0) / 1000, 1)} s)`);
    const prepared = await prepare(spec, root, config, dataset);
    const first = await publishCheckpoint({ registry, store, checkpoint: prepared.trained, reason: 'bench serving' });
    if (!first.published) throw new Error(`not published: ${first.reason}`);

    // Index recall and the engines, in this process (before the server starts).
    const rng = new Random(options.seed);
    const sample = rng.shuffle([...dataset.sequences]).slice(0, options.recallUsers);
    const histories = sample.map((s) => s.itemIds.slice(-MAX_HISTORY));
    t0 = performance.now();
    // The version as the server loads it (its index choice), and one that scores every item.
    // The server's index cache: the server then loads what this process built, as a replica would.
    const annCache = new AnnIndexCache(path.join(config.artifacts.dir, 'ann-cache'), config.serving.annCacheEntries);
    const served = await ModelVersion.load(store, first.model, { engine: 'onnx', annCache, ann: config.serving.ann, candidates: config.serving.candidates });
    const exact = await ModelVersion.load(store, first.model, { engine: 'onnx', ann: AnnConfig.parse({ index: 'exact' }) });
    const engines: Record<string, number> = {};
    let recall: { recall: number; index: string };
    try {
      const loadS = round((performance.now() - t0) / 1000, 1);
      t0 = performance.now();
      recall = { recall: await annRecall(served, exact, histories), index: served.ranker.exact ? 'exact' : 'hnsw' };
      log(`ann recall@10 ${recall.recall} (${recall.index} vs exact, ${histories.length} users, ${round((performance.now() - t0) / 1000, 1)} s; both versions loaded in ${loadS} s)`);
      const batches = histories.map((h) => served.servable.batchOf([h.filter((id) => served.knows(id))]));
      engines.onnx = Math.round(await throughput(served.encoder.inner, batches, 3, 20));
      engines.tfjs = Math.round(await throughput(new TfjsUserEncoder(served.servable.model), batches, 3, 20));
    } finally {
      served.dispose();
      exact.dispose();
    }
    log(`user vectors/s at batch 1: onnx ${engines.onnx}, tfjs ${engines.tfjs}`);

    // The server in its own process, the load from this one.
    t0 = performance.now();
    const server = await startServer(configFile, spec);
    log(`server ready at ${server.ready.url} in ${round((performance.now() - t0) / 1000, 1)} s (version ${server.ready.version}, ${server.ready.engine}, ${server.ready.index} index)`);
    try {
      const users = rng.shuffle(dataset.sequences.map((s) => s.userId));
      await load(server.ready.url, users, 5, options.connections); // warm-up (and the ranker's text-neighbour cache)
      const steady = await load(server.ready.url, users, options.duration, options.connections);
      log(`steady: ${JSON.stringify(steady)}`);
      // One request at a time: the latency of a request alone, without queueing behind others.
      const alone = await load(server.ready.url, users, Math.max(5, options.duration / 2), 1);
      log(`one connection: ${JSON.stringify(alone)}`);
      // At a rate above what the server sustains the queue only grows: its latency is the run's length, not a measurement.
      const sustainable = steady.rps >= options.rate;
      const atRate = options.rate > 0 && sustainable ? await loadAtRate(server.ready.url, users, options.rate, options.duration, server.child.pid) : undefined;
      if (atRate) log(`at ${options.rate} requests/s offered: ${JSON.stringify(atRate)}`);
      else if (options.rate > 0) log(`no run at ${options.rate} requests/s: the saturated server answered ${steady.rps}/s`);
      // The swap: the fine-tuned version published a third of the way in; the run goes on for
      // as long again after the swap (loading a 100,000-item version takes a while).
      let publishedAt: number | undefined;
      let swap: Extract<ServerChildMessage, { type: 'swapped' | 'swap_failed' }> | undefined;
      let swapSeenAt: number | undefined;
      server.child.on('message', (m: ServerChildMessage) => {
        if (m.type === 'swapped' || m.type === 'swap_failed') swap = m;
      });
      const third = (options.duration * 1000) / 3;
      const withSwap = await load(server.ready.url, users, SWAP_RUN_LIMIT_S, options.connections, (elapsed) => {
        if (publishedAt === undefined && elapsed >= third) {
          publishedAt = elapsed;
          // As `streamrec publish --prepare-serving` does when options.prepare is set.
          void publishCheckpoint({
            registry,
            store,
            checkpoint: prepared.tuned,
            evaluation: prepared.tunedEvaluation,
            reason: 'bench serving: hot swap',
            ...(options.prepare ? { prepare: (id: string) => prepareInChild(configFile, id).then((steps) => log(`prepared ${id} for serving (in a process of its own): ${steps}`)) } : {}),
          }).then((r) => log(`published the fine-tuned checkpoint: ${r.published ? `version ${r.model.version}` : r.reason}`));
        }
        if (swap && swapSeenAt === undefined) swapSeenAt = elapsed;
        return swapSeenAt !== undefined && elapsed >= Math.max(options.duration * 1000, swapSeenAt + third);
      });
      log(`with a swap: ${JSON.stringify(withSwap)}; swap ${JSON.stringify(swap ?? `did not finish within ${SWAP_RUN_LIMIT_S} s`)}`);
      // The swap of that run (the listener above goes on hearing the swaps of the run below).
      const saturatedSwap = swap;
      const swapAtRate = options.swapRate > 0 ? await swapUnderOpenLoad(server, users, options, registry, store, prepared.trained) : undefined;
      if (swapAtRate) log(`with a swap at ${options.swapRate} requests/s offered: ${JSON.stringify(swapAtRate)}`);
      return {
        catalog: dataset.name,
        items: dataset.items.length,
        users: dataset.sequences.length,
        engine: server.ready.engine,
        onnx_threads: options.onnxThreads,
        validate_responses: options.validateResponses,
        workers: options.workers,
        index: server.ready.index,
        ...(server.ready.hnswlib ? { hnswlib: server.ready.hnswlib } : {}),
        ef: config.serving.ann.hnsw.ef,
        candidates: config.serving.candidates,
        connections: options.connections,
        duration_s: options.duration,
        latency_at_rps: atRate ? options.rate : null,
        ...(options.rate > 0 && !sustainable ? { note: `p50/p99 are the saturated run's: it answered ${steady.rps} requests/s, below the --rate ${options.rate} the open-loop run would offer` } : {}),
        p50_ms: atRate ? atRate.p50_ms : steady.p50_ms,
        p99_ms: atRate ? atRate.p99_ms : steady.p99_ms,
        rps: steady.rps,
        errors: steady.errors,
        swap_errors: swapErrors([{ errors: withSwap.errors, outcome: saturatedSwap?.type ?? 'unfinished' }, ...(swapAtRate ? [swapAtRate] : [])]),
        swap: {
          prepared: options.prepare,
          outcome: saturatedSwap?.type ?? 'unfinished',
          load_ms: saturatedSwap?.type === 'swapped' ? Math.round(saturatedSwap.durationMs) : null,
          load_steps_ms: saturatedSwap?.type === 'swapped' ? saturatedSwap.steps : null,
          run_s: round(withSwap.seconds, 1),
          published_at_s: publishedAt === undefined ? null : round(publishedAt / 1000, 1),
          p50_ms: withSwap.p50_ms,
          p99_ms: withSwap.p99_ms,
          max_ms: withSwap.max_ms,
          rps: withSwap.rps,
          answers_by_version: withSwap.versions,
        },
        swap_at_rate: swapAtRate ?? null,
        ann_recall_at_10: recall.recall,
        ann_index: recall.index,
        onnx_user_vectors_per_s: engines.onnx,
        tfjs_user_vectors_per_s: engines.tfjs,
        steady: { ...steady, versions: undefined },
        at_rate: atRate ?? null,
        one_connection: { p50_ms: alone.p50_ms, p99_ms: alone.p99_ms, rps: alone.rps, errors: alone.errors },
        setup_s: { ...prepared.setupS, server_start: round(server.ready.loadMs / 1000, 1) },
      };
    } finally {
      await stopServer(server.child);
    }
  } finally {
    if (!options.workDir) rmSync(root, { recursive: true, force: true });
  }
}

function indexFlag(value: string | undefined): BenchOptions['index'] {
  if (value === undefined) return 'auto';
  if (value === 'auto' || value === 'exact' || value === 'hnsw') return value;
  throw new ConfigError(`--index: expected auto, exact or hnsw, got ${JSON.stringify(value)}`);
}

export async function run(args: string[]): Promise<Record<string, unknown>> {
  setLogLevel('warn');
  const flags = parseFlags(args, KNOWN);
  const catalogs = (flags.get('catalogs') ?? 'scientific,synthetic').split(',').map((s) => s.trim());
  for (const c of catalogs) if (c !== 'scientific' && c !== 'synthetic') throw new ConfigError(`--catalogs: expected scientific and/or synthetic, got ${JSON.stringify(c)}`);
  const items = numberFlag(flags, 'items') ?? 100_000;
  const users = numberFlag(flags, 'users') ?? 5000;
  const engine = flags.get('engine') ?? 'auto';
  if (!['auto', 'onnx', 'tfjs'].includes(engine)) throw new ConfigError(`--engine: expected auto, onnx or tfjs, got ${JSON.stringify(engine)}`);
  const options = {
    duration: numberFlag(flags, 'duration') ?? 15,
    connections: numberFlag(flags, 'connections') ?? 8,
    rate: numberFlag(flags, 'rate') ?? 2000,
    swapRate: numberFlag(flags, 'swap-rate') ?? 1000,
    engine,
    onnxThreads: numberFlag(flags, 'onnx-threads') ?? ServingConfig.parse({}).onnxThreads,
    workers: numberFlag(flags, 'workers') ?? 2,
    index: indexFlag(flags.get('index')),
    prepare: (flags.get('prepare') ?? 'true') !== 'false',
    validateResponses: (flags.get('validate-responses') ?? String(ServingConfig.parse({}).validateResponses)) !== 'false',
    ...(flags.has('ef') ? { ef: numberFlag(flags, 'ef') } : {}),
    ...(flags.has('candidates') ? { candidates: numberFlag(flags, 'candidates') } : {}),
    recallUsers: numberFlag(flags, 'recall-users') ?? 1000,
    seed: numberFlag(flags, 'seed') ?? 7,
    ...(flags.has('work-dir') ? { workDir: path.resolve(flags.get('work-dir') as string) } : {}),
  };
  const backend = await initTf();
  log(`TF.js ${backend.backend}; ${options.connections} connections, ${options.duration} s per run, engine ${engine}`);
  const out: Record<string, unknown> = {};
  if (catalogs.includes('scientific')) {
    if (existsSync(path.join(datasetsRoot(), 'scientific'))) out.scientific = await benchCatalog('scientific', options);
    else out.scientific = { skipped: 'the Amazon Scientific dataset is not on this machine' };
  }
  if (catalogs.includes('synthetic')) {
    Object.assign(out, await benchCatalog(`synthetic:items=${items},users=${users},seed=${options.seed}`, options));
  }
  return { ...out, scientific: out.scientific };
}
