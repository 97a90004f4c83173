import type { Command } from 'commander';
import { initTf } from '../../infra/tf';
import { ConfigError } from '../../errors';
import {
  evaluateFullRanking,
  evaluationRows,
  TextPrior,
  checkpointInputs,
  itemIdMappingFromList,
  leaveOneOutSplit,
  loadCheckpoint,
  parseNumberList,
  parsePoolingList,
  type ItemSideInfo,
  type TextPriorSettings,
} from '../../trainer';
import { commandConfig, type GlobalOptions } from '../config';
import { loadTrainingData } from './train';
import { artifactStore, openTrainingSink, printMetrics } from '../trainSupport';
import { progressBar } from '../progress';

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

/** The text prior settings of `--text-prior` / `--text-prior-last`, or undefined for the model alone. */
function textPriorSettings(flags: EvalFlags, tuned: TextPriorSettings | undefined): TextPriorSettings | undefined {
  if (flags.textPrior === undefined) {
    if (flags.textPriorLast !== undefined) throw new ConfigError('--text-prior-last needs --text-prior');
    if (flags.textPriorPooling !== undefined) throw new ConfigError('--text-prior-pooling needs --text-prior');
    return undefined;
  }
  let weight: number;
  if (flags.textPrior === 'tuned') {
    if (!tuned) throw new ConfigError(`--text-prior tuned: checkpoint ${flags.checkpoint} was saved without a tuned text prior (train with --text-prior)`);
    weight = tuned.weight;
  } else {
    weight = single('--text-prior', flags.textPrior, 'one weight or `tuned`', parseNumberList);
  }
  const lastItems =
    flags.textPriorLast !== undefined
      ? single('--text-prior-last', flags.textPriorLast, 'one integer', (flag, value) => parseNumberList(flag, value, { integer: true, min: 1 }))
      : (tuned?.lastItems ?? 5);
  const pooling =
    flags.textPriorPooling !== undefined ? single('--text-prior-pooling', flags.textPriorPooling, 'one of max or mean', parsePoolingList) : (tuned?.pooling ?? 'max');
  return { weight, lastItems, pooling };
}

/** The one entry of a flag whose value `parse` reads as a comma-separated list; a list is a ConfigError. */
function single<T>(flag: string, value: string, expected: string, parse: (flag: string, value: string) => T[]): T {
  if (value.includes(',')) throw new ConfigError(`${flag}: expected ${expected}, got ${JSON.stringify(value)}`);
  return parse(flag, value)[0] as T;
}

export function registerEval(program: Command, globals: () => GlobalOptions): void {
  program
    .command('eval')
    .description('Evaluate a saved checkpoint with full ranking on a dataset split; rows go to ClickHouse')
    .requiredOption('--checkpoint <id|dir>', 'checkpoint artifact id (checkpoint-...) or directory')
    .option('-d, --dataset <name|dir>', 'dataset the checkpoint was trained on')
    .option('--from-clickhouse', 'evaluate on the ClickHouse archive')
    .option('--split <valid|test>', 'which leave-one-out split', 'test')
    .option('--exclude-history', 'remove items of the user\'s history from the ranking')
    .option('--text-prior <weight|tuned>', 'rank by model cosine + weight x text similarity to the last items; `tuned`: the weight tuned with the checkpoint')
    .option('--text-prior-last <n>', 'latest history items forming the text prior\'s query (default: the tuned one, else 5)')
    .option('--text-prior-pooling <max|mean>', 'pooling of the cosines to the query items (default: the tuned one, else max)')
    .option('--no-clickhouse', 'do not write evaluation rows to ClickHouse')
    .action(async (flags: EvalFlags) => {
      if ((flags.dataset === undefined) === (flags.fromClickhouse !== true)) {
        throw new ConfigError('eval needs exactly one data source: --dataset <name|dir> or --from-clickhouse');
      }
      const config = commandConfig(globals());
      await initTf();
      const store = artifactStore(config);
      // The side information and id mapping the checkpoint was trained with, from its inputs.
      const { artifact, sideInfo, itemIds: trainedIds } = await checkpointInputs(store, flags.checkpoint);
      const dataset = await loadTrainingData(config, flags.dataset);
      const itemIds = trainedIds ?? itemIdMappingFromList(dataset.items.map((i) => i.itemId));
      const { model, settings } = await loadCheckpoint(store, flags.checkpoint, { itemCount: itemIds.itemCount, ...(sideInfo ? { sideInfo } : {}) });
      const data = leaveOneOutSplit(dataset, itemIds);
      const priorSettings = textPriorSettings(flags, settings.textPrior);
      if (priorSettings && !sideInfo) {
        throw new ConfigError(`--text-prior: checkpoint ${artifact.id} names no text embeddings (a SASRec checkpoint); the text prior needs them`);
      }
      const prior = priorSettings ? new TextPrior(sideInfo as ItemSideInfo, priorSettings) : undefined;
      const examples = flags.split === 'valid' ? data.valid : data.test;
      const bar = progressBar('evaluate', examples.count, 'users');
      const sink = await openTrainingSink(config, flags.clickhouse);
      try {
        const result = await evaluateFullRanking(model, examples, settings.model.maxHistoryLength as number, {
          ks: [5, 10, 20, 50],
          excludeHistory: flags.excludeHistory ?? false,
          batchSize: 256,
          ...(prior ? { textPrior: prior } : {}),
          onBatch: (done) => bar.update(done),
        });
        bar.stop();
        await sink.observer?.evaluated(
          evaluationRows(
            {
              runId: settings.runId ?? `eval-${artifact.id}`,
              modelVersion: artifact.id,
              split: flags.split === 'valid' ? 'valid' : 'test',
              usersEvaluated: result.users,
              excludeHistory: flags.excludeHistory ?? false,
              ...(priorSettings ? { textPrior: priorSettings } : {}),
              epoch: settings.epoch ?? -1,
              evaluatedAt: new Date(),
            },
            result.metrics,
          ),
        );
        process.stdout.write(`\n${settings.modelType} checkpoint ${artifact.id} on ${data.name} ${flags.split} (${result.users} users, full ranking, history ${flags.excludeHistory ? 'excluded' : 'kept rankable'}${priorSettings ? `, text prior weight ${priorSettings.weight}, ${priorSettings.pooling} over the last ${priorSettings.lastItems} items` : ''})\n\n`);
        printMetrics(result.metrics, flags.split);
      } finally {
        bar.stop();
        prior?.dispose();
        model.dispose();
        await sink.close();
      }
    });
}
