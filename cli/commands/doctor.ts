import type { Command } from 'commander';
import { spawnSync } from 'node:child_process';
import { initTf } from '../../infra/tf';
import { STREAMREC_VERSION } from '../../version';
import { commandConfig, type GlobalOptions } from '../config';

export function registerDoctor(program: Command, globals: () => GlobalOptions): void {
  program
    .command('doctor')
    .description('Show the environment streamrec runs in: TF.js backend (and why), Kafka, ClickHouse, datasets')
    .action(async () => {
      const config = commandConfig(globals());
      const tf = await initTf();
      const kcat = spawnSync('kcat', ['-V'], { encoding: 'utf8' });
      const report = {
        streamrec: STREAMREC_VERSION,
        node: process.version,
        tf: { backend: tf.backend, reason: tf.reason },
        kafka: { brokers: config.kafka.brokers, mockClusterAvailable: kcat.status === 0 },
        clickhouse: { url: config.clickhouse.url, database: config.clickhouse.database },
      };
      process.stdout.write(`TF.js backend: ${tf.backend} (${tf.reason})\n`);
      process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    });
}
