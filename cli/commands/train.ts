import type { Command } from 'commander';
import { ArtifactError, ConfigError } from '../../errors';
import { initTf } from '../../infra/tf';
import { loadDataset } from '../../ingest/datasets';
import { loadArtifactSideInfo, parseTrainerConfig, trainAndEvaluate, type ArtifactSideInfo } from '../../trainer';
import { commandConfig, type GlobalOptions } from '../config';
import { artifactStore, openTrainingSink, printMetrics, trainingProgress } from '../trainSupport';

interface TrainFlags {
  model: string;
  dataset: string;
  epochs?: string;
  batch?: string;
  lr?: string;
  maxHistory?: string;
  negatives?: string;
  excludeHistory?: boolean;
  clickhouse: boolean;
}

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
  const evaluation = { ...asRecord(section.eval), ...(flags.excludeHistory ? { excludeHistory: true } : {}) };
  return parseTrainerConfig({ ...section, model, train, eval: evaluation });
}

export function registerTrain(program: Command, globals: () => GlobalOptions): void {
  program
    .command('train')
    .description('Train and evaluate CCFRec or SASRec (full ranking, leave-one-out); rows go to ClickHouse, the best checkpoint to the artifact store')
    .requiredOption('-m, --model <ccfrec|sasrec>', 'model to train')
    .requiredOption('-d, --dataset <name|dir>', 'dataset: scientific, ml-100k, or a directory')
    .option('--epochs <n>', 'maximum epochs (early stopping on the validation metric)')
    .option('--batch <n>', 'batch size')
    .option('--lr <x>', 'learning rate')
    .option('--max-history <n>', 'history length the model sees')
    .option('--negatives <n>', 'sampled negatives per positive (>= catalog size: full softmax)')
    .option('--exclude-history', 'remove items of the user\'s history from the ranking (default: kept rankable)')
    .option('--no-clickhouse', 'do not write run, epoch and evaluation rows to ClickHouse')
    .action(async (flags: TrainFlags) => {
      if (flags.model !== 'ccfrec' && flags.model !== 'sasrec') throw new ConfigError(`--model must be ccfrec or sasrec, got ${JSON.stringify(flags.model)}`);
      const config = commandConfig(globals());
      const trainer = trainerConfig(config.trainer, flags);
      await initTf();
      const dataset = await loadDataset(flags.dataset);
      const store = artifactStore(config);
      // The latest rebuild's artifacts, when they describe this dataset's catalog.
      let artifacts: ArtifactSideInfo | undefined;
      try {
        artifacts = await loadArtifactSideInfo(store);
        const missing = dataset.items.filter((i) => artifacts?.itemIds.denseId(i.itemId) === undefined).length;
        if (missing > 0) {
          artifacts = undefined;
          if (flags.model === 'ccfrec') {
            throw new ArtifactError(`the latest semantic IDs do not cover ${missing} items of ${dataset.name}: run \`streamrec rebuild --dataset ${flags.dataset}\``);
          }
        }
      } catch (error) {
        if (!(error instanceof ArtifactError) || flags.model === 'ccfrec') {
          throw new ArtifactError(`CCFRec needs semantic IDs and text embeddings of ${dataset.name}: run \`streamrec rebuild --dataset ${flags.dataset}\` first`, { cause: error });
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
      } finally {
        progress.stop();
        await sink.close();
      }
    });
}
