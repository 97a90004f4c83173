import type { Command } from 'commander';
import { createKafka, parseKafkaUrl } from '../../infra/kafka';
import { replayToKafka } from '../../ingest';
import { commandConfig, kafkaTarget, type GlobalOptions } from '../config';
import { progressBar } from '../progress';
import { replayFlags, replaySelection } from '../replayOptions';

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
