import type { Command } from 'commander';
import { initTf } from '../../infra/tf';
import { ConfigError } from '../../errors';
import {
  evaluateFullRanking,
  evaluationRows,
  itemIdMappingFromList,
  itemIdsOfArtifact,
  leaveOneOutSplit,
  loadArtifactSideInfo,
  loadCheckpoint,
  type ItemIdMapping,
  type ItemSideInfo,
} from '../../trainer';
import { commandConfig, type GlobalOptions } from '../config';
import { loadTrainingData } from './train';
import { artifactStore, openTrainingSink, printMetrics } from '../trainSupport';
import { progressBar } from '../progress';

export function registerEval(program: Command, globals: () => GlobalOptions): void {
  program
    .command('eval')
    .description('Evaluate a saved checkpoint with full ranking on a dataset split; rows go to ClickHouse')
    .requiredOption('--checkpoint <id|dir>', 'checkpoint artifact id (checkpoint-...) or directory')
    .option('-d, --dataset <name|dir>', 'dataset the checkpoint was trained on')
    .option('--from-clickhouse', 'evaluate on the ClickHouse archive')
    .option('--split <valid|test>', 'which leave-one-out split', 'test')
    .option('--exclude-history', 'remove items of the user\'s history from the ranking')
    .option('--no-clickhouse', 'do not write evaluation rows to ClickHouse')
    .action(async (flags: { checkpoint: string; dataset?: string; fromClickhouse?: boolean; split: string; excludeHistory?: boolean; clickhouse: boolean }) => {
      if ((flags.dataset === undefined) === (flags.fromClickhouse !== true)) {
        throw new ConfigError('eval needs exactly one data source: --dataset <name|dir> or --from-clickhouse');
      }
      const config = commandConfig(globals());
      await initTf();
      const store = artifactStore(config);
      // The side information and id mapping the checkpoint was trained with, from its inputs.
      const artifact = /^checkpoint-[0-9a-f]{16}$/.test(flags.checkpoint) ? await store.open(flags.checkpoint) : await store.openDir(flags.checkpoint);
      const input = (role: string): string | undefined => artifact.manifest.inputs.find((i) => i.role === role)?.artifactId;
      const semanticIds = input('semantic_ids');
      const embeddings = artifact.manifest.inputs.find((i) => i.role.startsWith('embeddings:'))?.artifactId;
      let sideInfo: ItemSideInfo | undefined;
      let itemIds: ItemIdMapping | undefined;
      if (semanticIds && embeddings) ({ sideInfo, itemIds } = await loadArtifactSideInfo(store, { semanticIds, embeddings }));
      else if (input('item_registry')) itemIds = await itemIdsOfArtifact(store, input('item_registry') as string);
      const dataset = await loadTrainingData(config, flags.dataset);
      itemIds ??= itemIdMappingFromList(dataset.items.map((i) => i.itemId));
      const { model, settings } = await loadCheckpoint(store, artifact.id, { itemCount: itemIds.itemCount, ...(sideInfo ? { sideInfo } : {}) });
      const data = leaveOneOutSplit(dataset, itemIds);
      const examples = flags.split === 'valid' ? data.valid : data.test;
      const bar = progressBar('evaluate', examples.count, 'users');
      const sink = await openTrainingSink(config, flags.clickhouse);
      try {
        const result = await evaluateFullRanking(model, examples, settings.model.maxHistoryLength as number, {
          ks: [5, 10, 20, 50],
          excludeHistory: flags.excludeHistory ?? false,
          batchSize: 256,
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
              epoch: settings.epoch ?? -1,
              evaluatedAt: new Date(),
            },
            result.metrics,
          ),
        );
        process.stdout.write(`\n${settings.modelType} checkpoint ${artifact.id} on ${data.name} ${flags.split} (${result.users} users, full ranking, history ${flags.excludeHistory ? 'excluded' : 'kept rankable'})\n\n`);
        printMetrics(result.metrics, flags.split);
      } finally {
        bar.stop();
        model.dispose();
        await sink.close();
      }
    });
}
