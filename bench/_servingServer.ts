/**
 * The server process of `bench serving` (forked by bench/serving.ts, never run by hand):
 * `startServing` with the given config, the dataset's users' histories (their last
 * `maxHistory` items) in memory, and the live model version of the config's registry. Talks to
 * the parent over IPC: `{ type: 'ready', url, model }` once it listens, then every swap and
 * failed swap; `{ type: 'stop' }` closes it (draining the requests in flight) and exits.
 */
import { readFileSync } from 'node:fs';
import { loadDataset } from '../datasets';
import { AppConfig } from '../jobs';
import { setLogLevel } from '../logging';
import { MemoryHistories, startServing } from '../serving';

export interface ServerChildArgs {
  readonly configFile: string;
  readonly dataset: string;
  readonly maxHistory: number;
}

export type ServerChildMessage =
  | { readonly type: 'ready'; readonly url: string; readonly version: number | undefined; readonly engine: string | undefined; readonly index: string | undefined; readonly loadMs: number }
  | { readonly type: 'swapped'; readonly to: number; readonly durationMs: number; readonly steps: Readonly<Record<string, number>> }
  | { readonly type: 'swap_failed'; readonly version: number; readonly error: string }
  | { readonly type: 'stopped' };

function send(message: ServerChildMessage): void {
  process.send?.(message);
}

async function main(): Promise<void> {
  setLogLevel(process.env.STREAMREC_LOG_LEVEL ?? 'warn');
  const args = JSON.parse(process.argv[2] ?? '{}') as ServerChildArgs;
  const config = AppConfig.parse(JSON.parse(readFileSync(args.configFile, 'utf8')));
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
    loadMs: performance.now() - started,
  });
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
