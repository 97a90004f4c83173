import type { Command } from 'commander';
import { createKafka, parseKafkaUrl } from '../../infra/kafka';
import { ConfigError } from '../../errors';
import { datasetEvents, interactionCount, loadDataset, type LoadedDataset, type ReplayEvent } from '../../datasets';
import { limitInteractions, parseSpeed, replayToKafka, type ReplaySpeed } from '../../ingest';
import { commandConfig, kafkaTarget, type GlobalOptions } from '../config';
import { progressBar } from '../progress';

/** The replay options shared by `replay` and `ingest --source memory:<dataset>`. */
export interface ReplayOptions {
  readonly dataset: string;
  readonly speed: string;
  readonly seed: string;
  readonly limit?: string;
}

/** The dataset's events to replay (at most `--limit` interactions), how many, and at what speed. */
export async function replaySelection(opts: ReplayOptions): Promise<{ dataset: LoadedDataset; events: Iterable<ReplayEvent>; total: number; speed: ReplaySpeed }> {
  const speed = parseSpeed(opts.speed);
  const seed = Number(opts.seed);
  if (!Number.isInteger(seed)) throw new ConfigError(`--seed must be an integer, got ${JSON.stringify(opts.seed)}`);
  let limit = Infinity;
  if (opts.limit !== undefined) {
    limit = Number(opts.limit);
    if (!Number.isInteger(limit) || limit < 0) throw new ConfigError(`--limit must be a whole number of interactions >= 0, got ${JSON.stringify(opts.limit)}`);
  }
  const dataset = await loadDataset(opts.dataset, { seed });
  return { dataset, events: limitInteractions(datasetEvents(dataset), limit), total: dataset.items.length + Math.min(limit, interactionCount(dataset)), speed };
}

/** The replay flags, for the commands that replay a dataset (`scope`: when they apply). */
export function replayFlags(command: Command, scope?: string): Command {
  const note = scope ? ` (${scope})` : '';
  return command
    .option('--speed <max|Nx>', `max, or a factor on event time (3600x = one hour of events per second)${note}`, 'max')
    .option('--seed <n>', `seed of generated timestamps (datasets without them)${note}`, '2018')
    .option('--limit <n>', `stop after this many interactions${note}`);
}

export function registerReplay(program: Command, globals: () => GlobalOptions): void {
  const command = program
    .command('replay')
    .description('Produce a dataset (ml-100k, scientific or a directory) to Kafka as catalog and interaction events')
    .requiredOption('-d, --dataset <name|dir>', 'dataset name under the datasets directory, or a directory')
    .option('--to <url>', 'kafka://host:port[,host:port][/<interactions topic>] (default: kafka.brokers and ingest.topics from config)')
    .option('--catalog-topic <name>', 'catalog topic (default: ingest.topics.catalog from config)');
  replayFlags(command)
    .action(async (opts: { dataset: string; to?: string; catalogTopic?: string; speed: string; seed: string; limit?: string }) => {
      const { kafka, topics } = kafkaTarget(opts.to ? parseKafkaUrl(opts.to) : undefined, opts.catalogTopic);
      const config = commandConfig(globals(), { ...(kafka ? { kafka } : {}), ingest: { topics } });
      const { dataset, events, total, speed } = await replaySelection(opts);
      const producer = createKafka(config.kafka, 'replay').producer({ allowAutoTopicCreation: true });
      await producer.connect();
      const bar = progressBar(`replay ${dataset.name}`, total);
      const started = Date.now();
      const controller = new AbortController();
      const onSignal = (): void => controller.abort();
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      try {
        const produced = await replayToKafka({
          producer,
          topics: config.ingest.topics,
          events,
          total,
          speed,
          signal: controller.signal,
          onProgress: (p) => bar.update(p.produced),
        });
        bar.stop();
        const seconds = (Date.now() - started) / 1000;
        process.stdout.write(
          `${JSON.stringify({ dataset: dataset.name, produced, topics: { interactions: config.ingest.topics.interactions, catalog: config.ingest.topics.catalog }, seconds: Number(seconds.toFixed(2)), events_per_s: Math.round(produced / seconds), timestamps: dataset.timestampRule })}\n`,
        );
      } finally {
        bar.stop();
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        await producer.disconnect();
      }
    });
}
