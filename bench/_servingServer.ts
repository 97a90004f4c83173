/**
 * The server process of `bench serving` (forked by bench/serving.ts, never run by hand):
 * `startServing` with the given config, the dataset's users' histories (their last
 * `maxHistory` items) in memory, and the live model version of the config's registry. Talks to
 * the parent over IPC: `{ type: 'ready', url, model }` once it listens, then every swap and
 * failed swap; `{ type: 'stop' }` closes it (draining the requests in flight) and exits.
 *
 * With `serving.workers` above 1 it is the primary of a serving cluster, as `streamrec serve
 * --workers N` is: the workers run this file (each a whole server as above, on one port), and
 * the primary tells the parent what they say: ready once all listen, a swap once every worker
 * has swapped to the version (its load time the slowest worker's), any failed swap at once.
 */
import { readFileSync } from 'node:fs';
import { loadDataset } from '../datasets';
import { AppConfig } from '../jobs';
import { setLogLevel } from '../logging';
import { MemoryHistories, ServingCluster, servingWorkerIndex, startServing } from '../serving';
import { hnswlib } from '../serving/ann';

export interface ServerChildArgs {
  readonly configFile: string;
  readonly dataset: string;
  readonly maxHistory: number;
}

export type ServerChildMessage =
  | { readonly type: 'ready'; readonly url: string; readonly version: number | undefined; readonly engine: string | undefined; readonly index: string | undefined; readonly hnswlib: string | undefined; readonly loadMs: number }
  | { readonly type: 'swapped'; readonly to: number; readonly durationMs: number; readonly steps: Readonly<Record<string, number>> }
  | { readonly type: 'swap_failed'; readonly version: number; readonly error: string }
  | { readonly type: 'stopped' };

function send(message: ServerChildMessage): void {
  process.send?.(message);
}

/** The cluster's primary: relays the workers' messages as one server's. */
async function primary(config: AppConfig): Promise<void> {
  const started = performance.now();
  const ready: Array<Extract<ServerChildMessage, { type: 'ready' }>> = [];
  const swaps = new Map<number, Array<Extract<ServerChildMessage, { type: 'swapped' }>>>();
  const workers = config.serving.workers;
  let allReady!: () => void;
  const readyAll = new Promise<void>((resolve) => (allReady = resolve));
  // Told to stop, or the parent gone, at any point (also while the workers start: the workers of a
  // primary that exits are ended by node's cluster module).
  let servers: ServingCluster | undefined;
  let stopping = false;
  const stop = (code: number): void => {
    if (stopping) return;
    stopping = true;
    void (servers?.close() ?? Promise.resolve()).then(() => {
      if (code === 0) send({ type: 'stopped' });
      process.exit(code);
    });
  };
  process.on('message', (message: { type?: string }) => {
    if (message.type === 'stop') stop(0);
  });
  process.on('disconnect', () => stop(1)); // the parent died
  servers = await ServingCluster.start({
    workers,
    shutdownGraceMs: config.serving.shutdownGraceMs,
    onMessage: (_, raw) => {
      const message = raw as ServerChildMessage;
      if (message.type === 'ready' && ready.push(message) === workers) allReady();
      else if (message.type === 'swap_failed') send(message);
      else if (message.type === 'swapped') {
        const done = [...(swaps.get(message.to) ?? []), message];
        swaps.set(message.to, done);
        if (done.length === workers) send(done.reduce((a, b) => (b.durationMs > a.durationMs ? b : a)));
      }
    },
  });
  // Each worker's own 'ready' comes just after it listens.
  let waited: NodeJS.Timeout | undefined;
  await Promise.race([readyAll, new Promise<never>((_, reject) => (waited = setTimeout(() => reject(new Error('the workers listen but did not all say ready within 60 s')), 60_000)))]);
  clearTimeout(waited);
  const first = ready[0];
  send({ type: 'ready', url: servers.url, version: first?.version, engine: first?.engine, index: first?.index, hnswlib: first?.hnswlib, loadMs: performance.now() - started });
}

async function main(): Promise<void> {
  setLogLevel(process.env.STREAMREC_LOG_LEVEL ?? 'warn');
  const args = JSON.parse(process.argv[2] ?? '{}') as ServerChildArgs;
  const config = AppConfig.parse(JSON.parse(readFileSync(args.configFile, 'utf8')));
  const worker = servingWorkerIndex();
  if (worker === undefined && config.serving.workers > 1) return primary(config);
  const dataset = await loadDataset(args.dataset);
  const histories = new MemoryHistories();
  for (const s of dataset.sequences) histories.put(s.userId, s.itemIds.slice(-args.maxHistory), s.timestamps.slice(-args.maxHistory));
  const started = performance.now();
  const runtime = await startServing(config, { histories: { kind: 'memory', histories } });
  runtime.instrumentation.on('serving.swapped', (e) => send({ type: 'swapped', to: e.to, durationMs: e.durationMs, steps: runtime.models.current?.loadTimings ?? {} }));
  runtime.instrumentation.on('serving.swap_failed', (e) => send({ type: 'swap_failed', version: e.version, error: e.error }));
  const model = runtime.models.current;
  send({
    type: 'ready',
    url: runtime.url,
    version: model?.published.version,
    engine: model?.encoder.kind,
    index: model ? (model.ranker.exact ? 'exact' : 'hnsw') : undefined,
    hnswlib: hnswlib().name, // chosen by startServing
    loadMs: performance.now() - started,
  });
  if (worker !== undefined) return; // the cluster's primary stops it
  process.on('message', (message: { type?: string }) => {
    if (message.type !== 'stop') return;
    void runtime.close().then(() => {
      send({ type: 'stopped' });
      process.exit(0);
    });
  });
  process.on('disconnect', () => process.exit(1)); // the parent died
}

main().catch((error: unknown) => {
  process.stderr.write(`bench serving server: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
