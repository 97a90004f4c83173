import type { Command } from 'commander';
import os from 'node:os';
import path from 'node:path';
import { addLiveWakeOptions, liveWakeOverrides, type LiveWakeFlags } from '../trainerOptions';
import { ConfigError } from '../../errors';
import { startIngest, type IngestRuntime } from '../../ingest';
import { openRegistry, withOverrides } from '../../jobs';
import { createLogger } from '../../logging';
import type { ModelRegistry } from '../../infra/registry';
import { sleep } from '../../infra/retry';
import { LocalHistories, startServing, type ServingRuntime } from '../../serving';
import type { GlobalOptions } from '../config';
import { replayFlags } from '../replayOptions';
import { ingestConfig, ingestOptions, logProgress, replayedBatches, serveMetrics, type IngestOptions } from './ingest';
import { TrainerThread } from '../trainerThread';
import { describeStep, waitForLiveModel } from './trainer';
import { portFlag } from '../flags';

const log = createLogger('cli.run');

interface RunFlags extends IngestOptions, LiveWakeFlags {
  readonly registry?: string;
  readonly port?: string;
  readonly host?: string;
  readonly bootstrap: string;
  readonly bootstrapModel: string;
  readonly bootstrapEpochs: string;
  readonly duration?: string;
}

/** A whole number >= `min` from flag `name`. */
function wholeFlag(name: string, value: string, min: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new ConfigError(`${name}: expected a whole number >= ${min}, got ${JSON.stringify(value)}`);
  return n;
}

/**
 * The live model the trainer continues: the registry's, or with none, one trained from the archive
 * once `bootstrap` interactions are in it (ingest flushed first), or the first one someone else
 * publishes. False when stopped before there is one.
 */
async function firstModel(registry: ModelRegistry, ingest: IngestRuntime, trainer: TrainerThread, flags: { bootstrap: number; model: 'ccfrec' | 'sasrec'; epochs: number }, stop: AbortSignal): Promise<boolean> {
  if (await registry.live()) return true;
  if (flags.bootstrap === 0) {
    process.stdout.write(`no live model in ${registry.url}: waiting for one to be published (streamrec train, then streamrec publish; or run with --bootstrap <interactions>)\n`);
    return waitForLiveModel(registry, stop);
  }
  process.stdout.write(`no live model in ${registry.url}: the first one is trained once ${flags.bootstrap} interactions are archived\n`);
  let ended = false;
  ingest.done.then(
    () => (ended = true),
    () => (ended = true), // the failure itself is reported by the caller
  );
  while (!stop.aborted && !ended && ingest.processor.totals.accepted < flags.bootstrap) await sleep(200, stop);
  // Caught up with what was there (the catalog topic included) before the archive is read; a
  // stream that never lets the lag reach 0 gets 30 s.
  const caughtUpBy = Date.now() + 30_000;
  while (!stop.aborted && !ended && ingest.processor.consumerLag() !== 0 && Date.now() < caughtUpBy) await sleep(200, stop);
  if (stop.aborted) return false;
  await ingest.processor.flush();
  if (ingest.processor.totals.accepted === 0) throw new ConfigError('bootstrap: ingest ended with no interactions to train on');
  process.stdout.write(`training the first model on ${ingest.processor.totals.accepted} archived interactions (rebuild, ${flags.model} for ${flags.epochs} epochs, publish)\n`);
  const first = await trainer.bootstrap(flags.model, flags.epochs, stop);
  if (!first) return false;
  process.stdout.write(`version ${first.version} is live (${first.checkpointId}, ${first.seconds.toFixed(0)} s)\n`);
  return true;
}

/**
 * TensorFlow's thread pools default to every core: the trainer thread's steps would take them all
 * from the thread that ingests and serves. Unless the environment says otherwise, TF gets one core
 * fewer than the machine has (at least one); read when TF creates its context, so before anything
 * loads it. (Measured on 2 cores: micro-epochs no slower; its effect on the history tail was
 * within the run-to-run noise, see docs/live-loop.md.)
 */
function reserveCoreForStream(): void {
  const threads = String(Math.max(1, os.availableParallelism() - 1));
  process.env.TF_NUM_INTRAOP_THREADS ??= threads;
  process.env.TF_NUM_INTEROP_THREADS ??= threads;
}

export function registerRun(program: Command, globals: () => GlobalOptions): void {
  const command = program
    .command('run')
    .description(
      'The live loop in one process: ingest (Kafka, or a dataset replayed in-process) into rolling histories and the ClickHouse archive, ' +
        'the trainer continuing the live model in micro-epochs and publishing what passes the gate, and serving over ingest\'s histories (hot-swapping each publication)',
    );
  ingestOptions(command);
  addLiveWakeOptions(command);
  replayFlags(command, 'memory: source')
    .option('--registry <dir>', 'model registry: a directory or dir:<directory>, which the trainer thread and the server both read (default: modelRegistry.url)')
    .option('--port <n>', 'HTTP port (default: serving.port)')
    .option('--host <address>', 'interface to listen on (default: serving.host)')
    .option('--bootstrap <interactions>', 'with no live model, train the first one from the archive once this many interactions are in it (0: wait for one to be published)', '0')
    .option('--bootstrap-model <ccfrec|sasrec>', 'the model --bootstrap trains', 'ccfrec')
    .option('--bootstrap-epochs <n>', 'epochs of the model --bootstrap trains', '3')
    .option('--duration <seconds>', 'stop by itself after this long (default: until SIGINT / SIGTERM)')
    .action(async (flags: RunFlags, cmd: Command) => {
      const port = flags.port === undefined ? undefined : portFlag('--port', flags.port);
      const duration = flags.duration === undefined ? undefined : Number(flags.duration);
      if (duration !== undefined && !(Number.isFinite(duration) && duration > 0)) throw new ConfigError(`--duration: expected a positive number of seconds, got ${JSON.stringify(flags.duration)}`);
      if (flags.bootstrapModel !== 'ccfrec' && flags.bootstrapModel !== 'sasrec') throw new ConfigError(`--bootstrap-model: expected ccfrec or sasrec, got ${JSON.stringify(flags.bootstrapModel)}`);
      const bootstrap = { bootstrap: wholeFlag('--bootstrap', flags.bootstrap, 0), model: flags.bootstrapModel, epochs: wholeFlag('--bootstrap-epochs', flags.bootstrapEpochs, 1) } as const;
      const registryUrl = flags.registry === undefined ? undefined : /^(dir:|memory:)/.test(flags.registry) ? flags.registry : `dir:${path.resolve(flags.registry)}`;
      const base = ingestConfig(flags, cmd, globals());
      if (!base.config.ingest.archive) throw new ConfigError('--no-archive: the trainer of streamrec run reads the archive (run streamrec ingest --no-archive beside streamrec serve instead)');
      const config = withOverrides(base.config, {
        ...(registryUrl ? { modelRegistry: { url: registryUrl } } : {}),
        ...liveWakeOverrides(flags),
        serving: { ...(port !== undefined ? { port } : {}), ...(flags.host ? { host: flags.host } : {}) },
      });
      if (config.serving.workers > 1) {
        throw new ConfigError(
          `serving.workers: streamrec run serves from the process that ingests (the histories live there), so it takes 1, got ${config.serving.workers}; run streamrec ingest and streamrec serve --workers ${config.serving.workers} for several`,
          { context: { field: 'serving.workers' } },
        );
      }

      reserveCoreForStream();

      // SIGINT / SIGTERM (or --duration): the trainer finishes its look, the server drains, ingest flushes and commits.
      const stop = new AbortController();
      const onSignal = (signal: string): void => {
        if (!stop.signal.aborted) process.stdout.write(`${signal}: stopping (the trainer finishes its look, the server drains, ingest flushes and commits)\n`);
        stop.abort();
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      const limit = duration === undefined ? undefined : setTimeout(() => onSignal('--duration reached'), duration * 1000);
      let ingest: IngestRuntime | undefined;
      let serving: ServingRuntime | undefined;
      let trainer: TrainerThread | undefined;
      let metricsServer: ReturnType<typeof serveMetrics> | undefined;
      let progress: NodeJS.Timeout | undefined;
      try {
        const batches = base.replayed === undefined ? undefined : await replayedBatches({ ...flags, dataset: base.replayed }, config.ingest.topics, stop.signal);
        ingest = await startIngest({ config, ...(batches ? { batches } : {}), ...(flags.idleExitMs ? { idleExitMs: Number(flags.idleExitMs) } : {}) });
        metricsServer = flags.metricsPort ? serveMetrics(ingest.metrics.registry, Number(flags.metricsPort)) : undefined;
        progress = base.progressMs > 0 ? logProgress(ingest, base.progressMs) : undefined;
        const ingestEnded = ingest.done.then(
          () => log.info({ totals: ingest?.processor.totals }, 'ingest ended: serving and training go on'),
          (error: unknown) => {
            log.error({ err: error }, 'ingest failed: stopping');
            process.exitCode = 1;
            onSignal('ingest failed');
          },
        );
        serving = await startServing(config, { histories: { kind: 'memory', histories: new LocalHistories(ingest.store) } });
        const current = serving.models.current;
        process.stdout.write(`serving on ${serving.url} (${current ? `version ${current.published.version}` : 'no model yet: 503 until one is published'}; histories from ingest in this process)\n`);
        const registry = openRegistry(config);
        // The trainer's TF.js steps run on a thread of their own: ingest and serving here never wait for one.
        trainer = new TrainerThread(config, { prepare: true });
        if (await firstModel(registry, ingest, trainer, bootstrap, stop.signal)) {
          await trainer.run(config.live, stop.signal, {
            onStart: (s) => process.stdout.write(`live trainer ${s.runId} (its own thread): continuing version ${s.version} every ${config.live.intervalSeconds} s\n`),
            onStep: (step) => void ((step.result || step.rebuild) && process.stdout.write(`${new Date().toISOString().slice(11, 23)} ${describeStep(step)}\n`)),
          });
        }
        void ingestEnded;
        if (!stop.signal.aborted) await new Promise<void>((resolve) => stop.signal.addEventListener('abort', () => resolve(), { once: true }));
      } finally {
        if (limit) clearTimeout(limit);
        if (progress) clearInterval(progress);
        metricsServer?.close();
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        await trainer?.close().catch((error: unknown) => log.error({ err: error }, 'closing the trainer thread failed'));
        await serving?.close().catch((error: unknown) => log.error({ err: error }, 'closing the server failed'));
        await ingest?.stop().catch((error: unknown) => log.error({ err: error }, 'stopping ingest failed'));
        process.stdout.write(`stopped${ingest ? `: ${JSON.stringify({ totals: ingest.processor.totals, users: ingest.store.size })}` : ''}\n`);
        // Kafka and chDB clients may hold the process open a while after closing.
        setTimeout(() => process.exit(process.exitCode ?? 0), 1000).unref();
      }
    });
}
