import type { Command } from 'commander';
import { ConfigError } from '../../errors';
import { ArtifactStore } from '../../infra/artifacts';
import { openRegistry, publishCheckpoint } from '../../jobs';
import { prepareServing } from '../../serving';
import { commandConfig, type GlobalOptions } from '../config';
import { printTable } from '../table';

interface PublishFlags {
  readonly checkpoint?: string;
  readonly gateMetric?: string;
  readonly minGain?: string;
  readonly reason?: string;
  readonly list?: boolean;
  readonly prepareServing?: boolean;
}

export function registerPublish(program: Command, globals: () => GlobalOptions): void {
  program
    .command('publish')
    .description('Make a checkpoint the live model version in the model registry (modelRegistry.url), with the test evaluation stored with it; --list shows the publications')
    .option('--checkpoint <id|dir>', 'the checkpoint to publish')
    .option('--gate-metric <metric>', 'publish only if this metric (e.g. ndcg@10) reaches the live version\'s (plus --min-gain)')
    .option('--min-gain <x>', 'with --gate-metric: the least gain over the live version (negative: a tolerance)', '0')
    .option('--reason <text>', 'why it is published (kept with the publication)')
    .option('--list', 'list the publications, the live one marked')
    .option('--prepare-serving', 'before it goes live, export its ONNX user encoder and build its HNSW indexes into the index cache (serving settings of the config), so servers swap to it in seconds')
    .action(async (flags: PublishFlags) => {
      const config = commandConfig(globals());
      const registry = openRegistry(config);
      const out = process.stdout;
      if (flags.list) {
        if (flags.checkpoint) throw new ConfigError('--list and --checkpoint: give one');
        const [live, history] = await Promise.all([registry.live(), registry.history()]);
        if (history.length === 0) {
          out.write(`no model published in ${registry.url} yet\n`);
          return;
        }
        printTable(
          history.map((m) => ({
            version: `${m.version}${m.version === live?.version ? ' (live)' : ''}`,
            checkpoint: m.checkpointId,
            model: m.modelType,
            published: m.publishedAt,
            [`${m.evaluation.split} recall@10`]: (m.evaluation.metrics['recall@10'] ?? NaN).toFixed(4),
            'ndcg@10': (m.evaluation.metrics['ndcg@10'] ?? NaN).toFixed(4),
            reason: m.reason ?? '',
          })),
        );
        return;
      }
      if (!flags.checkpoint) throw new ConfigError('publish needs --checkpoint <id|dir> (or --list)');
      const minGain = Number(flags.minGain);
      if (!Number.isFinite(minGain)) throw new ConfigError(`--min-gain: expected a number, got ${JSON.stringify(flags.minGain)}`);
      const result = await publishCheckpoint({
        registry,
        store: new ArtifactStore(config.artifacts.dir),
        checkpoint: flags.checkpoint,
        ...(flags.gateMetric ? { gate: { metric: flags.gateMetric, minGain } } : {}),
        ...(flags.reason !== undefined ? { reason: flags.reason } : {}),
        ...(flags.prepareServing
          ? {
              prepare: async (checkpointId: string) => {
                const steps = await prepareServing(config, checkpointId);
                out.write(`prepared for serving: ${Object.entries(steps).map(([k, v]) => `${k} ${v} ms`).join(', ')}\n`);
              },
            }
          : {}),
      });
      if (!result.published) {
        out.write(`not published: ${result.reason}; version ${result.live.version} (${result.live.checkpointId}) stays live\n`);
        process.exitCode = 3;
        return;
      }
      const m = result.model;
      const metrics = Object.entries(m.evaluation.metrics)
        .filter(([k]) => k.endsWith('@10'))
        .map(([k, v]) => `${k} ${v.toFixed(4)}`)
        .join(', ');
      out.write(`published ${m.checkpointId} (${m.modelType}) as version ${m.version} in ${registry.url}${m.previousVersion ? `, replacing version ${m.previousVersion}` : ''}\n`);
      out.write(`  evidence: ${m.evaluation.split} ${metrics} over ${m.evaluation.users} users${m.evaluation.textPrior ? ` (with its tuned text prior, weight ${m.evaluation.textPrior.weight})` : ''}\n`);
    });
}
