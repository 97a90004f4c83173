import type { Command } from 'commander';
import { writeReport } from '../../report';
import { commandConfig, type GlobalOptions } from '../config';

interface ReportFlags {
  clickhouse?: string;
  out: string;
  run?: string[];
}

export function registerReport(program: Command, globals: () => GlobalOptions): void {
  program
    .command('report')
    .description(
      'Write one self-contained HTML page (charts and data inlined; opens offline) from the ClickHouse tables: training runs, the live loop, ' +
        'semantic IDs, ingest, freshness',
    )
    .option('--clickhouse <url>', 'chdb:<dir> (embedded) or http://host:8123 (default: clickhouse.url of the config)')
    .option('-o, --out <file>', 'where to write the page', 'report.html')
    .option('--run <id...>', 'only these training / live-loop runs (repeat or list several)')
    .action(async (flags: ReportFlags) => {
      const config = commandConfig(globals(), flags.clickhouse ? { clickhouse: { url: flags.clickhouse } } : {});
      const { file, data, bytes } = await writeReport(config.clickhouse, { out: flags.out, ...(flags.run ? { runs: flags.run } : {}) });
      const drawn = [
        `${data.training.runs.length} training runs`,
        `${data.live.microEpochs.length} micro-epochs`,
        `${data.semanticIds.builds.length} semantic-ID builds`,
        `${data.ingest.totals.interactions.toLocaleString('en-US')} interactions and ${data.ingest.totals.deadLetters.toLocaleString('en-US')} dead letters`,
        `${data.freshness.probes.length} freshness probes`,
      ];
      process.stdout.write(`report: ${file} (${(bytes / 1024 / 1024).toFixed(1)} MB; ${drawn.join(', ')})\n`);
    });
}
