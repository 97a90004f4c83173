import type { Command } from 'commander';
import { ConfigError } from '../../errors';
import { dataSourceOf, runEvaluateJob, type EvaluationPrior } from '../../jobs';
import { parseNumberList, parsePoolingList } from '../../trainer';
import { commandConfig, type GlobalOptions } from '../config';
import { jobProgress, printMetrics } from '../report';

interface EvalFlags {
  checkpoint: string;
  dataset?: string;
  fromClickhouse?: boolean;
  split: string;
  excludeHistory?: boolean;
  textPrior?: string;
  textPriorLast?: string;
  textPriorPooling?: string;
  clickhouse: boolean;
}

/** The one entry of a flag whose value `parse` reads as a comma-separated list; a list is a ConfigError. */
function single<T>(flag: string, value: string, expected: string, parse: (flag: string, value: string) => T[]): T {
  if (value.includes(',')) throw new ConfigError(`${flag}: expected ${expected}, got ${JSON.stringify(value)}`);
  return parse(flag, value)[0] as T;
}

/** The prior that `--text-prior` / `--text-prior-last` / `--text-prior-pooling` ask for. */
function priorOf(flags: EvalFlags): EvaluationPrior {
  if (flags.textPrior === undefined) {
    if (flags.textPriorLast !== undefined) throw new ConfigError('--text-prior-last needs --text-prior');
    if (flags.textPriorPooling !== undefined) throw new ConfigError('--text-prior-pooling needs --text-prior');
    return { kind: 'none' };
  }
  if (flags.textPrior === 'tuned') {
    if (flags.textPriorLast !== undefined || flags.textPriorPooling !== undefined) {
      throw new ConfigError('--text-prior tuned uses the query length and pooling tuned with the checkpoint; give a weight to choose them');
    }
    return { kind: 'tuned' };
  }
  return {
    kind: 'weight',
    weight: single('--text-prior', flags.textPrior, 'one weight or `tuned`', parseNumberList),
    ...(flags.textPriorLast !== undefined
      ? { lastItems: single('--text-prior-last', flags.textPriorLast, 'one integer', (flag, value) => parseNumberList(flag, value, { integer: true, min: 1 })) }
      : {}),
    ...(flags.textPriorPooling !== undefined ? { pooling: single('--text-prior-pooling', flags.textPriorPooling, 'one of max or mean', parsePoolingList) } : {}),
  };
}

export function registerEval(program: Command, globals: () => GlobalOptions): void {
  program
    .command('eval')
    .description('Evaluate a saved checkpoint with full ranking on a dataset split (trainer.eval: cut-offs, batch size, history rule); rows go to ClickHouse')
    .requiredOption('--checkpoint <id|dir>', 'checkpoint artifact id (checkpoint-...) or directory')
    .option('-d, --dataset <name|dir>', 'dataset the checkpoint was trained on')
    .option('--from-clickhouse', 'evaluate on the ClickHouse archive')
    .option('--split <valid|test>', 'which leave-one-out split', 'test')
    .option('--exclude-history', "remove items of the user's history from the ranking (default: trainer.eval.excludeHistory)")
    .option('--text-prior <weight|tuned>', 'rank by model cosine + weight x text similarity to the last items; `tuned`: the prior tuned with the checkpoint')
    .option('--text-prior-last <n>', "latest history items forming the text prior's query (default: the tuned one, else trainer.eval.textPrior.lastItems)")
    .option('--text-prior-pooling <max|mean>', 'pooling of the cosines to the query items (default: the tuned one, else trainer.eval.textPrior.pooling)')
    .option('--no-clickhouse', 'do not write evaluation rows to ClickHouse')
    .action(async (flags: EvalFlags) => {
      if (flags.split !== 'valid' && flags.split !== 'test') throw new ConfigError(`--split must be valid or test, got ${JSON.stringify(flags.split)}`);
      const source = dataSourceOf('eval', flags.dataset, flags.fromClickhouse);
      const prior = priorOf(flags);
      const progress = jobProgress();
      try {
        const job = await runEvaluateJob({
          config: commandConfig(globals()),
          checkpoint: flags.checkpoint,
          source,
          split: flags.split,
          prior,
          ...(flags.excludeHistory ? { excludeHistory: true } : {}),
          writeRows: flags.clickhouse,
          instrumentation: progress.instrumentation,
        });
        progress.stop();
        const { result } = job;
        const p = job.prior;
        process.stdout.write(
          `\n${job.modelType} checkpoint ${job.checkpointId} on ${job.dataset} ${job.split} (${result.users} users, full ranking, history ${result.excludeHistory ? 'excluded' : 'kept rankable'}` +
            `${p ? `, text prior weight ${p.weight}, ${p.pooling} over the last ${p.lastItems} items` : ''})\n\n`,
        );
        printMetrics(result.metrics, job.split);
      } finally {
        progress.stop();
      }
    });
}
