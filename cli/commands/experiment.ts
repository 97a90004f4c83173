import type { Command } from 'commander';
import { ConfigError } from '../../errors';
import { dataSourceOf, modelTypeOf, runIncrementalJob, trainerConfigFromFlags } from '../../jobs';
import { INCREMENTAL_METHODS, MicroEpochConfig, type IncrementalMethod } from '../../trainer';
import { commandConfig, type GlobalOptions } from '../config';
import { printTable } from '../table';
import { addTrainerOptions, trainerFlagValues } from '../trainerOptions';
import { retrainOnFlag } from '../flags';

interface ExperimentOptions {
  readonly model?: string;
  readonly dataset?: string;
  readonly fromClickhouse?: boolean;
  readonly windows: string;
  readonly trainFraction: string;
  readonly methods: string;
  readonly retrainOn: string;
  readonly microSteps?: string;
  readonly microLr?: string;
  readonly microReplay?: string;
  readonly clickhouse: boolean;
  readonly [flag: string]: unknown;
}

function numberFlag(flag: string, value: string, check: (v: number) => boolean, expected: string): number {
  const v = Number(value);
  if (value.trim() === '' || !Number.isFinite(v) || !check(v)) throw new ConfigError(`${flag}: expected ${expected}, got ${JSON.stringify(value)}`);
  return v;
}

/** `--methods static,micro,retrain` as a list (each known, at least one). */
export function parseMethods(value: string): IncrementalMethod[] {
  const list = value.split(',').map((s) => s.trim());
  const unknown = list.filter((m) => !(INCREMENTAL_METHODS as readonly string[]).includes(m));
  if (list.length === 0 || unknown.length > 0) throw new ConfigError(`--methods: expected a comma-separated list of ${INCREMENTAL_METHODS.join(', ')}, got ${JSON.stringify(value)}`);
  return list as IncrementalMethod[];
}

export function registerExperiment(program: Command, globals: () => GlobalOptions): void {
  const experiment = program.command('experiment').description('Experiments that measure what streamrec does');
  const command = experiment
    .command('incremental')
    .description(
      'Train on the first part of a dataset in time order, stream the rest in windows, and compare on every window (prequential Recall/NDCG@K, before training on it) ' +
        'the static model, micro-epoch fine-tuning and a full retrain at every window; rows go to ClickHouse (micro_epochs)',
    )
    .option('-m, --model <ccfrec|sasrec>', 'model (default: trainer.model.type of the config, else ccfrec; CCFRec needs a rebuild of the dataset)')
    .option('-d, --dataset <name|dir>', 'dataset: ml-100k, scientific, synthetic, or a directory')
    .option('--from-clickhouse', 'use the ClickHouse archive instead of a dataset')
    .option('--windows <n>', 'windows the streamed part is cut into (one micro-epoch and one retrain each)', '4')
    .option('--train-fraction <f>', 'share of the interactions, in time order, the first model is trained on', '0.8')
    .option('--methods <list>', 'which of static, micro, retrain to run', INCREMENTAL_METHODS.join(','))
    .option(
      '--retrain-on <split|all>',
      'what each retrain trains on: split (the leave-one-out split, early-stopped on validation, as the first model) or all (every earlier interaction, for the first model\'s best epoch count)',
      'split',
    )
    .option('--micro-steps <n>', `most optimiser steps per micro-epoch (default ${MicroEpochConfig.parse({}).maxSteps})`)
    .option('--micro-lr <rate>', `micro-epoch learning rate (default ${MicroEpochConfig.parse({}).learningRate})`)
    .option('--micro-replay <ratio>', `replayed older examples per new one (default ${MicroEpochConfig.parse({}).replayRatio})`)
    .option('--no-clickhouse', 'do not write micro_epochs rows to ClickHouse');
  addTrainerOptions(command).action(async (opts: ExperimentOptions) => {
    const config = commandConfig(globals());
    const trainer = trainerConfigFromFlags(config.trainer, modelTypeOf(config.trainer, opts.model), trainerFlagValues(opts));
    const windows = numberFlag('--windows', opts.windows, (v) => Number.isInteger(v) && v >= 1, 'a positive integer');
    const trainFraction = numberFlag('--train-fraction', opts.trainFraction, (v) => v > 0 && v < 1, 'a number between 0 and 1');
    const micro = {
      ...(opts.microSteps !== undefined ? { maxSteps: numberFlag('--micro-steps', opts.microSteps, (v) => Number.isInteger(v) && v >= 1, 'a positive integer') } : {}),
      ...(opts.microLr !== undefined ? { learningRate: numberFlag('--micro-lr', opts.microLr, (v) => v > 0, 'a positive number') } : {}),
      ...(opts.microReplay !== undefined ? { replayRatio: numberFlag('--micro-replay', opts.microReplay, (v) => v >= 0 && v <= 16, 'a number in 0..16') } : {}),
    };
    const { runId, result, summary } = await runIncrementalJob({
      config,
      trainer,
      source: dataSourceOf('experiment incremental', opts.dataset, opts.fromClickhouse),
      micro,
      windows,
      trainFraction,
      methods: parseMethods(opts.methods),
      retrainOn: retrainOnFlag(opts.retrainOn),
      writeRows: opts.clickhouse,
      onWindow: (row) =>
        process.stderr.write(
          `[${row.method} window ${row.window + 1}/${windows}] ${row.examples} examples: ndcg@10 ${(row.metrics['ndcg@10'] ?? Number.NaN).toFixed(4)}, recall@10 ${(row.metrics['recall@10'] ?? Number.NaN).toFixed(4)}, training ${row.trainSeconds.toFixed(1)} s` +
            `${row.micro ? ` (${row.micro.steps} steps, gate ${row.micro.accepted ? 'passed' : 'refused'})` : ''}\n`,
        ),
    });
    process.stdout.write(`\nincremental experiment ${runId}: ${result.dataset}, ${result.model}; first model on ${result.trainEvents} interactions (${result.firstModelEpochs} epochs, ${result.firstModelSeconds.toFixed(0)} s), ${result.streamEvents} streamed in ${result.windows} windows\n\n`);
    printTable(
      Object.entries(result.methods).map(([method, s]) => ({
        method,
        'ndcg@10': (s.metrics['ndcg@10'] ?? Number.NaN).toFixed(4),
        'recall@10': (s.metrics['recall@10'] ?? Number.NaN).toFixed(4),
        examples: s.examples,
        'training s': s.trainSeconds.toFixed(1),
      })),
    );
    process.stdout.write(`\n${JSON.stringify(summary)}\n`);
  });
}
