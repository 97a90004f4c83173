import type { Command } from 'commander';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { addLiveWakeOptions, liveWakeOverrides, type LiveWakeFlags } from '../trainerOptions';
import type { ModelRegistry } from '../../infra/registry';
import { ConfigError } from '../../errors';
import { createLogger } from '../../logging';
import { Instrumentation } from '../../instrumentation';
import { LiveTrainer, TrainerMetrics, openRegistry, withOverrides, type LiveStep } from '../../jobs';
import { prepareServing } from '../../serving';
import { commandConfig, type GlobalOptions } from '../config';
import { serveMetrics } from './ingest';
import { portFlag } from '../flags';

const log = createLogger('cli.trainer');

interface TrainerFlags extends LiveWakeFlags {
  readonly registry?: string;
  readonly once?: boolean;
  readonly prepareServing?: boolean;
  readonly waitForModel?: boolean;
  readonly clickhouse: boolean;
  readonly heartbeatFile?: string;
  readonly metricsPort?: string;
}

/**
 * `--heartbeat-file`: the file is written when the trainer starts, after every look (micro-epoch
 * or not), every live.pollSeconds while it waits for the next look and every 10 s while it waits
 * for a first model, so a container health check can tell a trainer that goes on from one stuck
 * in a look (its file grows old). A path that cannot be written at start is a ConfigError naming
 * it; a later failed write is logged, not fatal. Nothing without a path.
 */
function heartbeat(file: string | undefined): (what: string) => void {
  if (!file) return () => undefined;
  const target = path.resolve(file);
  const write = (what: string): void => writeFileSync(target, `${new Date().toISOString()} ${what}\n`);
  try {
    write('starting');
  } catch (error) {
    throw new ConfigError(`--heartbeat-file: cannot write ${target}: ${(error as Error).message}`);
  }
  return (what) => {
    try {
      write(what);
    } catch (error) {
      log.warn({ err: error, file: target }, 'writing the heartbeat file failed');
    }
  };
}

/** Where a full rebuild is, for a person. */
function describeRebuild(rebuild: NonNullable<LiveStep['rebuild']>): string {
  switch (rebuild.phase) {
    case 'started':
      return `full rebuild ${rebuild.rebuildId} started (${rebuild.trigger}: ${rebuild.reason})`;
    case 'training':
      return `full rebuild ${rebuild.rebuildId} training in the background (${Math.round(rebuild.seconds)} s)`;
    case 'shadow':
      return `full rebuild ${rebuild.rebuildId} scored beside the live model: ndcg ${rebuild.candidate.toFixed(4)} vs ${rebuild.live.toFixed(4)} on ${rebuild.gateExamples} examples (${rebuild.caughtUp} events caught up)`;
    case 'decided':
      return `full rebuild ${rebuild.rebuildId} ${rebuild.decision}${rebuild.version !== undefined ? ` as version ${rebuild.version}` : ''}: ${rebuild.detail}`;
  }
}

/** One line per look for a person: what was read, trained and published (and a full rebuild's progress). */
export function describeStep(step: LiveStep): string {
  const r = step.result;
  const rebuild = step.rebuild ? `; ${describeRebuild(step.rebuild)}` : '';
  if (!r) return `no new interactions (${step.read} read)${rebuild}`;
  const prequential = r.prequential ? `prequential ndcg@10 ${(r.prequential.metrics['ndcg@10'] ?? Number.NaN).toFixed(4)}` : 'no examples to score';
  const outcome = step.published ? `published as version ${step.published.version} (${step.checkpointId})` : `not published: ${step.notPublished ?? 'no checkpoint'}`;
  return `micro-epoch ${r.microEpoch}: ${step.read} interactions read${step.unknownItems > 0 ? ` (${step.unknownItems} of unknown items left out)` : ''}, ${r.examples} examples, ${prequential}; ${r.steps} steps in ${r.computeSeconds.toFixed(1)} s; ${outcome}${rebuild}`;
}

/**
 * Waits until `registry` has a live model (the first publication), or `signal` aborts: whether
 * there is one. The registry's watch does not hold the process open; a timer does while it waits.
 */
export async function waitForLiveModel(registry: ModelRegistry, signal: AbortSignal): Promise<boolean> {
  if (await registry.live()) return true;
  const keepAlive = setInterval(() => undefined, 60_000);
  try {
    await new Promise<void>((resolve) => {
      const unwatch = registry.watch(
        () => {
          unwatch();
          resolve();
        },
        { signal },
      );
      signal.addEventListener('abort', () => resolve(), { once: true });
    });
  } finally {
    clearInterval(keepAlive);
  }
  return !signal.aborted;
}

export function registerTrainer(program: Command, globals: () => GlobalOptions): void {
  const command = program
    .command('trainer')
    .description(
      'The live loop\'s trainer: continue the live model on the interactions archived since its stream position, in micro-epochs (prequential score, fine-tune, gate), ' +
        'publishing each one that passes the gate; rows go to ClickHouse (micro_epochs). Restarts continue from the live checkpoint.',
    )
    .option('--registry <dir|url>', 'model registry: a directory, dir:<directory> or memory: (default: modelRegistry.url)');
  addLiveWakeOptions(command)
    .option('--once', 'one look (and micro-epoch when there is something new), then exit')
    .option('--prepare-serving', 'before publishing, export the ONNX encoder and build the serving indexes (servers then swap without building)')
    .option('--wait-for-model', 'with no live model yet, wait for the first publication instead of failing (a trainer started beside a fresh stack)')
    .option('--no-clickhouse', 'do not write micro_epochs rows to ClickHouse')
    .option('--heartbeat-file <path>', 'write this file at start, after every look and while waiting (every live.pollSeconds; every 10 s for a first model): a health check reads its age')
    .option('--metrics-port <port>', 'serve Prometheus metrics on http://0.0.0.0:<port>/metrics (looks, micro-epochs by outcome, failures, live version, interactions behind; 0: a free port)')
    .action(async (flags: TrainerFlags) => {
      const registryUrl = flags.registry === undefined ? undefined : /^(dir:|memory:)/.test(flags.registry) ? flags.registry : `dir:${path.resolve(flags.registry)}`;
      const config = withOverrides(commandConfig(globals()), {
        ...(registryUrl ? { modelRegistry: { url: registryUrl } } : {}),
        ...liveWakeOverrides(flags),
      });
      const registry = openRegistry(config);
      const beat = heartbeat(flags.heartbeatFile);
      const metricsPort = flags.metricsPort === undefined ? undefined : portFlag('--metrics-port', flags.metricsPort);
      // SIGINT / SIGTERM: stop after the current look (or stop waiting for a model).
      const stop = new AbortController();
      const onSignal = (): void => {
        process.stdout.write('stopping after the current look\n');
        stop.abort();
      };
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      try {
        if (flags.waitForModel && !(await registry.live())) {
          process.stdout.write(`no live model in ${registry.url} yet: waiting for the first publication (streamrec train --from-clickhouse, then streamrec publish)\n`);
          const waiting = setInterval(() => beat('waiting for a first model'), 10_000);
          const published = await waitForLiveModel(registry, stop.signal).finally(() => clearInterval(waiting));
          if (!published) {
            process.stdout.write('live trainer stopped\n');
            return;
          }
        }
        // The trainer's events (trainer.micro_epoch_end): the metrics time micro-epochs from them.
        const instrumentation = new Instrumentation();
        const metrics = metricsPort === undefined ? undefined : new TrainerMetrics();
        metrics?.follow(instrumentation);
        const trainer = await LiveTrainer.start({
          config,
          registry,
          live: config.live,
          writeRows: flags.clickhouse,
          instrumentation,
          onProgress: (what) => beat(what),
          ...(flags.prepareServing ? { prepare: (checkpointId: string) => prepareServing(config, checkpointId) } : {}),
        });
        let metricsServer: ReturnType<typeof serveMetrics> | undefined;
        const recordStep = async (step: LiveStep): Promise<void> => {
          if (!metrics) return;
          const behind = await trainer.behind(1_000_000).catch(() => undefined);
          metrics.recordStep(step, trainer.liveVersion.version, behind);
        };
        const offsets = Object.entries(trainer.streamOffsets).map(([k, v]) => `${k}@${v}`).join(', ') || 'the start';
        process.stdout.write(`live trainer ${trainer.runId}: continuing version ${trainer.liveVersion.version} (${trainer.liveVersion.checkpointId}) from ${offsets}\n`);
        beat(`continuing version ${trainer.liveVersion.version}`);
        try {
          if (metrics) {
            const server = serveMetrics(metrics.registry, metricsPort as number);
            metricsServer = server;
            // A port in use is a clear error (and the trainer is closed), not an uncaught exception.
            await new Promise<void>((resolve, reject) => {
              server.once('listening', () => resolve());
              server.once('error', (error) => reject(new ConfigError(`--metrics-port ${metricsPort}: cannot listen: ${error.message}`)));
            });
            const address = server.address();
            process.stdout.write(`trainer metrics on http://127.0.0.1:${typeof address === 'object' && address ? address.port : metricsPort}/metrics\n`);
          }
          if (flags.once) {
            const step = await trainer.step();
            await recordStep(step);
            process.stdout.write(`${describeStep(step)}\n`);
          } else {
            await trainer.run(
              stop.signal,
              (step) => {
                beat(`looked: ${step.read} interactions read`);
                void recordStep(step);
                if (step.result || step.rebuild) process.stdout.write(`${describeStep(step)}\n`);
              },
              () => beat('waiting for the next look'),
              () => metrics?.recordFailure(),
            );
          }
        } finally {
          metricsServer?.close();
          await trainer.close();
        }
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
      process.stdout.write('live trainer stopped\n');
    });
}
