import type { Command } from 'commander';
import { createKafka, parseKafkaUrl } from '../../infra/kafka';
import { datasetEvents, interactionCount, loadDataset, parseSpeed, replayToKafka } from '../../ingest';
import { commandConfig, type GlobalOptions } from '../config';
import { progressBar } from '../progress';

export function registerReplay(program: Command, globals: () => GlobalOptions): void {
  program
    .command('replay')
    .description('Produce a dataset (ml-100k, scientific or a directory) to Kafka as catalog and interaction events')
    .requiredOption('-d, --dataset <name|dir>', 'dataset name under the datasets directory, or a directory')
    .option('--to <url>', 'kafka://host:port[,host:port] (default: kafka.brokers from config)')
    .option('--speed <max|Nx>', 'max, or a factor on event time (3600x = one hour of events per second)', 'max')
    .option('--seed <n>', 'seed of generated timestamps (datasets without them)', '2018')
    .option('--limit <n>', 'stop after this many interactions')
    .action(async (opts: { dataset: string; to?: string; speed: string; seed: string; limit?: string }) => {
      const url = opts.to ? parseKafkaUrl(opts.to) : undefined;
      const config = commandConfig(globals(), url ? { kafka: { brokers: url.brokers } } : {});
      const speed = parseSpeed(opts.speed);
      const dataset = await loadDataset(opts.dataset, { seed: Number(opts.seed) });
      const limit = opts.limit ? Number(opts.limit) : Infinity;
      const total = dataset.items.length + Math.min(limit, interactionCount(dataset));
      const events = (function* () {
        let n = 0;
        for (const e of datasetEvents(dataset)) {
          if (e.kind === 'interaction' && n++ >= limit) return;
          yield e;
        }
      })();
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
          `${JSON.stringify({ dataset: dataset.name, produced, seconds: Number(seconds.toFixed(2)), events_per_s: Math.round(produced / seconds), timestamps: dataset.timestampRule })}\n`,
        );
      } finally {
        bar.stop();
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        await producer.disconnect();
      }
    });
}
