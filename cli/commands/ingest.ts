import type { Command } from 'commander';
import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';
import { parseKafkaUrl } from '../../infra/kafka';
import { ConfigError } from '../../errors';
import { pacedReplayBatches, progressSummary, ReplayClock, startIngest, type IngestRuntime, type ProgressSample, type RawBatch } from '../../ingest';
import type { TopicsConfig } from '../../schemas/config';
import type { AppConfig } from '../../jobs';
import { createLogger } from '../../logging';
import { commandConfig, kafkaTarget, type GlobalOptions } from '../config';
import { replayFlags, replaySelection, type ReplayOptions } from '../replayOptions';

const log = createLogger('cli.ingest');

/** Serves `registry` in the Prometheus text format on /metrics. */
export function serveMetrics(registry: Registry, port: number): Server {
  const server = createServer((req, res) => {
    if (req.url !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    registry
      .metrics()
      .then((text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text))
      .catch((error: unknown) => res.writeHead(500).end(String(error)));
  });
  server.listen(port, () => log.info({ port }, 'serving /metrics'));
  return server;
}

/** What the runtime has done so far (totals copied: the processor keeps counting). */
function sample(runtime: IngestRuntime): ProgressSample {
  const { processor } = runtime;
  const { messages, accepted, deadLetters, flushes } = processor.totals;
  return { at: Date.now(), totals: { messages, accepted, deadLetters, flushes }, lag: processor.consumerLag(), users: runtime.store.size };
}

/** Logs a progress summary every `intervalMs` (see `progressSummary`). */
export function logProgress(runtime: IngestRuntime, intervalMs: number): NodeJS.Timeout {
  let previous = sample(runtime);
  const timer = setInterval(() => {
    const next = sample(runtime);
    try {
      log.info(progressSummary(previous, next), 'ingest progress');
    } catch (error) {
      log.warn({ err: error }, 'progress summary failed');
    }
    previous = next;
  }, intervalMs);
  timer.unref();
  return timer;
}

/** `--source memory:<dataset|dir>`: the dataset replayed in-process. */
const MEMORY_SCHEME = 'memory:';

/** The replayed dataset as in-process batches (paced at `--speed`), logging what it replays. */
export async function replayedBatches(opts: ReplayOptions, topics: TopicsConfig, signal: AbortSignal): Promise<AsyncIterable<RawBatch>> {
  const { dataset, events, total, speed } = await replaySelection(opts);
  log.info({ dataset: dataset.name, events: total, speed: opts.speed, timestamps: dataset.timestampRule }, 'replaying in-process');
  return pacedReplayBatches(events, { topics, clock: new ReplayClock(speed), signal });
}

export interface IngestOptions extends Omit<ReplayOptions, 'dataset'> {
  readonly source?: string;
  readonly catalogTopic?: string;
  readonly group?: string;
  readonly clickhouse?: string;
  readonly historyStore?: string;
  readonly archive: boolean;
  readonly idleExitMs?: string;
  readonly metricsPort?: string;
  readonly progressMs: string;
}

/** Flags that only mean something for one kind of source, by option name. */
const KAFKA_ONLY = { catalogTopic: '--catalog-topic', group: '--group', idleExitMs: '--idle-exit-ms' } as const;
const REPLAY_ONLY = { speed: '--speed', seed: '--seed', limit: '--limit' } as const;

/**
 * The configuration `streamrec ingest` runs with, and the dataset of a `memory:` source. Flags
 * that do not apply to the chosen source are errors rather than silently ignored.
 */
export function ingestConfig(opts: IngestOptions, cmd: Command, globals: GlobalOptions): { config: AppConfig; replayed: string | undefined; progressMs: number } {
  const progressMs = Number(opts.progressMs);
  if (!Number.isInteger(progressMs) || progressMs < 0) throw new ConfigError(`--progress-ms must be a whole number of milliseconds >= 0, got ${JSON.stringify(opts.progressMs)}`);
  const replayed = opts.source?.startsWith(MEMORY_SCHEME) ? opts.source.slice(MEMORY_SCHEME.length) : undefined;
  const given = (flags: Record<string, string>): string[] => Object.entries(flags).flatMap(([name, flag]) => (cmd.getOptionValueSource(name) === 'cli' ? [flag] : []));
  if (replayed === undefined) {
    const misplaced = given(REPLAY_ONLY);
    if (misplaced.length > 0) throw new ConfigError(`${misplaced.join(', ')}: only for a replayed dataset (--source ${MEMORY_SCHEME}<dataset|dir>), not for Kafka`);
  } else {
    if (replayed === '') throw new ConfigError(`--source ${MEMORY_SCHEME} needs a dataset name or directory, e.g. ${MEMORY_SCHEME}ml-100k`);
    const misplaced = given(KAFKA_ONLY);
    if (misplaced.length > 0) throw new ConfigError(`${misplaced.join(', ')}: only for a Kafka source, not for --source ${opts.source} (an in-process replay ends by itself)`);
    // The replay's partitions and offsets are made up: in the changelog a Kafka ingest restores
    // from, they would make it skip real events.
    if (opts.historyStore !== undefined && opts.historyStore !== 'memory') {
      throw new ConfigError(`--history-store ${opts.historyStore}: not with --source ${opts.source} (an in-process replay keeps its histories in memory)`);
    }
  }
  const { kafka, topics } = kafkaTarget(opts.source && replayed === undefined ? parseKafkaUrl(opts.source) : undefined, opts.catalogTopic);
  const config = commandConfig(globals, {
    ...(kafka ? { kafka } : {}),
    ...(opts.clickhouse ? { clickhouse: { url: opts.clickhouse } } : {}),
    ingest: {
      topics,
      ...(opts.group ? { groupId: opts.group } : {}),
      ...(replayed !== undefined ? { historyStore: 'memory' } : opts.historyStore ? { historyStore: opts.historyStore } : {}),
      ...(opts.archive === false ? { archive: false } : {}),
    },
  });
  return { config, replayed, progressMs };
}

/** The ingest flags (`streamrec ingest` and `streamrec run`). */
export function ingestOptions(command: Command): Command {
  return command
    .option('--source <url>', 'kafka://host:port[,host:port]/<interactions topic>, or memory:<dataset|dir> (replay a dataset in-process, no Kafka; see --speed)')
    .option('--catalog-topic <name>', 'catalog topic')
    .option('--group <id>', 'consumer group id')
    .option('--clickhouse <url>', 'chdb:<dir> (embedded) or http://host:8123')
    .option('--history-store <kind>', 'changelog (survives restarts) or memory')
    .option('--no-archive', 'do not archive events in ClickHouse')
    .option('--idle-exit-ms <ms>', 'stop by itself after this long without new messages')
    .option('--metrics-port <port>', 'serve Prometheus metrics on http://0.0.0.0:<port>/metrics')
    .option('--progress-ms <ms>', 'log rates, dead letters and consumer lag this often (0: never)', '10000');
}

export function registerIngest(program: Command, globals: () => GlobalOptions): void {
  const command = program.command('ingest').description('Run the ingest stage: Kafka -> validated events -> rolling histories, dead letters, ClickHouse archive');
  ingestOptions(command);
  replayFlags(command, 'memory: source')
    .action(async (opts: IngestOptions, cmd: Command) => {
      // Signals from the start: one during start-up (restore, migrations) stops ingest once it is up.
      const replay = new AbortController();
      let runtime: IngestRuntime | undefined;
      const onSignal = (signal: string): void => {
        log.info({ signal }, 'stopping: finishing the batch in flight, flushing and committing');
        replay.abort();
        if (runtime) void runtime.stop();
      };
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      let server: Server | undefined;
      let progress: NodeJS.Timeout | undefined;
      try {
        const { config, replayed, progressMs } = ingestConfig(opts, cmd, globals());
        const batches = replayed === undefined ? undefined : await replayedBatches({ ...opts, dataset: replayed }, config.ingest.topics, replay.signal);
        runtime = await startIngest({ config, ...(batches ? { batches } : {}), ...(opts.idleExitMs ? { idleExitMs: Number(opts.idleExitMs) } : {}) });
        if (replay.signal.aborted) void runtime.stop();
        server = opts.metricsPort ? serveMetrics(runtime.metrics.registry, Number(opts.metricsPort)) : undefined;
        progress = progressMs > 0 ? logProgress(runtime, progressMs) : undefined;
        await runtime.done;
        process.stdout.write(`${JSON.stringify({ totals: runtime.processor.totals, users: runtime.store.size })}\n`);
        const lost = runtime.processor.totals.lostToRetention;
        if (lost > 0) {
          // Not a clean run: messages were lost before ingest could read them (the log has their offsets).
          process.stderr.write(`error: ${lost} messages were deleted by the broker (retention or a size limit) before ingest read them: neither archived nor dead-lettered; their offsets are in the log (exit 3)\n`);
          process.exitCode = 3;
        }
      } finally {
        // Stopped or failed: what could be was flushed, committed and closed. Do not wait for
        // client timers to wind down (a failure sets the exit code before this fires).
        server?.close();
        if (progress) clearInterval(progress);
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        // Also after a failed start, whose clients (Kafka, chDB) may hold the process open.
        setTimeout(() => process.exit(process.exitCode ?? 0), 1000).unref();
      }
    });
}
