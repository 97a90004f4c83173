import type { Command } from 'commander';
import { dataSourceOf, modelTypeOf, runTrainJob, trainerConfigFromFlags } from '../../jobs';
import { commandConfig, type GlobalOptions } from '../config';
import { jobProgress, printTrainResult } from '../report';
import { addTrainerOptions, trainerFlagValues } from '../trainerOptions';

interface TrainOptions {
  readonly model?: string;
  readonly dataset?: string;
  readonly fromClickhouse?: boolean;
  readonly clickhouse: boolean;
  readonly [flag: string]: unknown;
}

export function registerTrain(program: Command, globals: () => GlobalOptions): void {
  const command = program
    .command('train')
    .description('Train and evaluate CCFRec or SASRec (full ranking, leave-one-out); rows go to ClickHouse, the best checkpoint to the artifact store')
    .option('-m, --model <ccfrec|sasrec>', 'model to train (default: trainer.model.type of the config, else ccfrec)')
    .option('-d, --dataset <name|dir>', 'dataset: synthetic, scientific, ml-100k, or a directory')
    .option('--from-clickhouse', 'train on the ClickHouse archive (interactions and items) instead of a dataset')
    .option('--no-clickhouse', 'do not write run, epoch and evaluation rows to ClickHouse');
  addTrainerOptions(command).action(async (opts: TrainOptions) => {
    const config = commandConfig(globals());
    const trainer = trainerConfigFromFlags(config.trainer, modelTypeOf(config.trainer, opts.model), trainerFlagValues(opts));
    const progress = jobProgress();
    try {
      const result = await runTrainJob({
        config,
        trainer,
        source: dataSourceOf('train', opts.dataset, opts.fromClickhouse),
        writeRows: opts.clickhouse,
        instrumentation: progress.instrumentation,
      });
      progress.stop();
      printTrainResult(result);
    } finally {
      progress.stop();
    }
  });
}
