import type { Command } from 'commander';
import { ArtifactError, ConfigError } from '../../errors';
import { initTf } from '../../infra/tf';
import { openClickHouse } from '../../infra/clickhouse';
import { loadArchiveDataset, loadDataset, type LoadedDataset } from '../../datasets';
import { loadArtifactSideInfo, parseNumberList, parsePoolingList, parseTrainerConfig, trainAndEvaluate, type ArtifactSideInfo, type TrainAndEvaluateResult } from '../../trainer';
import { commandConfig, type AppConfig, type GlobalOptions } from '../config';
import { artifactStore, openTrainingSink, printMetrics, trainingProgress } from '../trainSupport';

export interface TrainFlags {
  model: string;
  /** Stop after the epoch in which this much time has passed. */
  timeBudget?: number;
  dataset?: string;
  fromClickhouse?: boolean;
  epochs?: string;
  batch?: string;
  lr?: string;
  maxHistory?: string;
  negatives?: string;
  excludeHistory?: boolean;
  /** Comma-separated text prior weights to tune on validation. */
  textPrior?: string;
  textPriorLast?: string;
  textPriorPooling?: string;
  clickhouse: boolean;
}

/** A dataset directory or name, or (undefined) the ClickHouse archive. */
export async function loadTrainingData(config: AppConfig, dataset: string | undefined): Promise<LoadedDataset> {
  if (dataset !== undefined) return loadDataset(dataset);
  const ch = await openClickHouse(config.clickhouse);
  try {
    return await loadArchiveDataset(ch);
  } finally {
    await ch.close();
  }
}

const rebuildHint = (dataset: string): string => (dataset ? `--dataset ${dataset}` : '--from-clickhouse');

/** The trainer config of a command: the config file's `trainer` section, the model type, then flags. */
function trainerConfig(section: Record<string, unknown>, flags: TrainFlags) {
  const asRecord = (v: unknown): Record<string, unknown> => (v && typeof v === 'object' ? (v as Record<string, unknown>) : {});
  const model = { ...asRecord(section.model), type: flags.model };
  if (flags.maxHistory) Object.assign(model, { maxHistoryLength: Number(flags.maxHistory) });
  if (flags.negatives) Object.assign(model, { negNum: Number(flags.negatives) });
  const train = { ...asRecord(section.train) };
  if (flags.epochs) train.epochs = Number(flags.epochs);
  if (flags.batch) train.batchSize = Number(flags.batch);
  if (flags.lr) train.learningRate = Number(flags.lr);
  if (flags.timeBudget !== undefined) train.timeBudgetSeconds = flags.timeBudget;
  const evaluation: Record<string, unknown> = { ...asRecord(section.eval), ...(flags.excludeHistory ? { excludeHistory: true } : {}) };
  if (flags.textPrior !== undefined || flags.textPriorLast !== undefined || flags.textPriorPooling !== undefined) {
    evaluation.textPrior = {
      ...asRecord(evaluation.textPrior),
      ...(flags.textPrior !== undefined ? { weights: parseNumberList('--text-prior', flags.textPrior) } : {}),
      ...(flags.textPriorLast !== undefined ? { lastItems: parseNumberList('--text-prior-last', flags.textPriorLast, { integer: true, min: 1 }) } : {}),
      ...(flags.textPriorPooling !== undefined ? { pooling: parsePoolingList('--text-prior-pooling', flags.textPriorPooling) } : {}),
    };
  }
  return parseTrainerConfig({ ...section, model, train, eval: evaluation });
}

export function registerTrain(program: Command, globals: () => GlobalOptions): void {
  program
    .command('train')
    .description('Train and evaluate CCFRec or SASRec (full ranking, leave-one-out); rows go to ClickHouse, the best checkpoint to the artifact store')
    .requiredOption('-m, --model <ccfrec|sasrec>', 'model to train')
    .option('-d, --dataset <name|dir>', 'dataset: scientific, ml-100k, or a directory')
    .option('--from-clickhouse', 'train on the ClickHouse archive (interactions and items) instead of a dataset')
    .option('--epochs <n>', 'maximum epochs (early stopping on the validation metric)')
    .option('--batch <n>', 'batch size')
    .option('--lr <x>', 'learning rate')
    .option('--max-history <n>', 'history length the model sees')
    .option('--negatives <n>', 'sampled negatives per positive (>= catalog size: full softmax)')
    .option('--time-budget <seconds>', 'stop after the epoch in which this much time has passed (best weights kept)', (v) => Number(v))
    .option('--exclude-history', 'remove items of the user\'s history from the ranking (default: kept rankable)')
    .option('--text-prior <weights>', 'after training, tune a text-similarity prior over these weights on validation (e.g. 0.1,0.25,0.5,1) and report it on test')
    .option('--text-prior-last <n,...>', 'query lengths to try with each weight: latest history items forming the text prior\'s query (default 2,5,10)')
    .option('--text-prior-pooling <max,mean>', 'poolings of the cosines to the query items to try: max (nearest item, default) and/or mean')
    .option('--no-clickhouse', 'do not write run, epoch and evaluation rows to ClickHouse')
    .action(async (flags: TrainFlags) => {
      await runTraining(commandConfig(globals()), flags);
    });
}

/** `streamrec train`: one run with the latest rebuild's side information; returns its result. */
export async function runTraining(config: AppConfig, flags: TrainFlags): Promise<TrainAndEvaluateResult> {
  if (flags.model !== 'ccfrec' && flags.model !== 'sasrec') throw new ConfigError(`--model must be ccfrec or sasrec, got ${JSON.stringify(flags.model)}`);
  if ((flags.dataset === undefined) === (flags.fromClickhouse !== true)) {
    throw new ConfigError('train needs exactly one data source: --dataset <name|dir> or --from-clickhouse');
  }
  const trainer = trainerConfig(config.trainer, flags);
  await initTf();
  const dataset = await loadTrainingData(config, flags.dataset);
  const source = flags.dataset ?? '';
  const store = artifactStore(config);
  // The latest rebuild's artifacts, when they describe this dataset's catalog.
  let artifacts: ArtifactSideInfo | undefined;
  try {
    artifacts = await loadArtifactSideInfo(store);
    const missing = dataset.items.filter((i) => artifacts?.itemIds.denseId(i.itemId) === undefined).length;
    if (missing > 0) {
      artifacts = undefined;
      if (flags.model === 'ccfrec') {
        throw new ArtifactError(`the latest semantic IDs do not cover ${missing} items of ${dataset.name}: run \`streamrec rebuild ${rebuildHint(source)}\``);
      }
    }
  } catch (error) {
    if (!(error instanceof ArtifactError) || flags.model === 'ccfrec') {
      throw new ArtifactError(`CCFRec needs semantic IDs and text embeddings of ${dataset.name}: run \`streamrec rebuild ${rebuildHint(source)}\` first`, { cause: error });
    }
  }
  const sink = await openTrainingSink(config, flags.clickhouse);
  const progress = trainingProgress();
  try {
    const result = await trainAndEvaluate({
      dataset,
      config: trainer,
      store,
      onProgress: progress.onProgress,
      ...(artifacts ? { itemIds: artifacts.itemIds, sideInfo: artifacts.sideInfo } : {}),
      ...(sink.observer ? { observer: sink.observer } : {}),
    });
    progress.stop();
    const out = process.stdout;
    out.write(`\n${result.config.model.type} on ${result.data.name} (${result.data.protocol}), run ${result.runId}\n`);
    out.write(`  backend ${result.backend}; ${result.data.itemCount} items; train ${result.data.train}, valid ${result.data.valid}, test ${result.data.test}\n`);
    out.write(`  ${result.fit.status} after ${result.fit.epochs} epochs; best epoch ${result.fit.bestEpoch + 1}; checkpoint ${result.checkpointId ?? '(none)'}\n`);
    out.write(`  full ranking over all items; history items ${trainer.eval.excludeHistory ? 'excluded' : 'kept rankable'}\n\n`);
    printMetrics(result.test.metrics, 'test');
    const prior = result.textPrior;
    if (prior) {
      const alone = prior.curve[0]?.value ?? NaN;
      out.write(
        prior.weight > 0
          ? `\n  text prior: weight ${prior.weight}, ${prior.pooling} over the last ${prior.lastItems} items, chosen by valid ${prior.metric} among ${prior.curve.length - 1} settings ` +
              `(${prior.valid.metrics[prior.metric]?.toFixed(4)}; the model alone ${alone.toFixed(4)})\n\n`
          : `\n  text prior: none of ${prior.curve.length - 1} settings beat the model alone on valid ${prior.metric} (${alone.toFixed(4)})\n\n`,
      );
      printMetrics(prior.test.metrics, 'test + text prior');
    }
    return result;
  } finally {
    progress.stop();
    await sink.close();
  }
}
