import type { Command } from 'commander';
import { ConfigError } from '../../errors';
import { ArtifactStore } from '../../infra/artifacts';
import { IngestArchive, openClickHouse } from '../../infra/clickhouse';
import { initTf } from '../../infra/tf';
import { loadDataset } from '../../datasets';
import { codeNewItems, rebuild } from '../../quantizer/rebuild';
import type { QuantizerSettingsInput } from '../../quantizer';
import { Random } from '../../random';
import type { ItemEvent } from '../../schemas/events';
import { AppConfig, commandConfig, type GlobalOptions } from '../config';
import { mergeConfig } from '../../schemas/loadConfig';
import { progressBar } from '../progress';
import { printTable } from '../table';

const METHODS = ['pq', 'opq', 'rq', 'rqkmeans'] as const;

export interface RebuildFlags {
  dataset?: string;
  fromClickhouse?: boolean;
  method?: string;
  levels?: string;
  codes?: string;
  encoder?: string;
  pcaDims?: string;
  disambiguate?: boolean;
  newItems?: boolean;
}

/** `base` with the rebuild flags applied (flags beat file and environment). */
function mergeFlags(base: AppConfig, overrides: { features: Record<string, unknown>; quantizer: Record<string, unknown> }): AppConfig {
  return AppConfig.parse(mergeConfig(base as unknown as Record<string, unknown>, overrides));
}

export function registerRebuild(program: Command, globals: () => GlobalOptions): void {
  program
    .command('rebuild')
    .description('Rebuild item features and semantic IDs: clean texts -> embeddings -> PCA -> quantizer, with manifests')
    .option('-d, --dataset <name|dir>', 'catalog from a dataset (ml-100k, scientific, or a directory)')
    .option('--from-clickhouse', 'catalog from the ClickHouse items archive (clickhouse.url)')
    .option('--method <name>', `quantizer: ${METHODS.join(', ')}, or all (one table row each)`)
    .option('--levels <n>', 'codebooks (PQ/OPQ: sub-spaces; RQ: levels)')
    .option('--codes <n>', 'codes per codebook (a power of two)')
    .option('--encoder <name>', 'text encoder: glove-sif, onnx, tfidf-lsa')
    .option('--pca-dims <n>', 'PCA (whitened) dimensions per text field')
    .option('--disambiguate', 'add a last digit that makes every item\'s semantic ID unique')
    .option('--new-items', 'no refit: code only items added since the last rebuild, with its stored projection and codebooks')
    .action(async (opts: RebuildFlags) => {
      await runRebuild(commandConfig(globals()), opts);
    });
}

/** `streamrec rebuild` with a base config (flags override it). */
export async function runRebuild(base: AppConfig, opts: RebuildFlags): Promise<void> {
  if ((opts.dataset === undefined) === (opts.fromClickhouse !== true)) {
    throw new ConfigError('rebuild needs exactly one catalog source: --dataset <name|dir> or --from-clickhouse');
  }
  if (opts.method && opts.method !== 'all' && !(METHODS as readonly string[]).includes(opts.method)) {
    throw new ConfigError(`--method must be one of ${METHODS.join(', ')} or all, got ${JSON.stringify(opts.method)}`);
  }
  const config = mergeFlags(base, {
    features: { ...(opts.encoder ? { encoder: opts.encoder } : {}), ...(opts.pcaDims ? { pcaDims: Number(opts.pcaDims) } : {}) },
    quantizer: {
      ...(opts.method && opts.method !== 'all' ? { method: opts.method } : {}),
      ...(opts.levels ? { levels: Number(opts.levels) } : {}),
      ...(opts.codes ? { codesPerLevel: Number(opts.codes) } : {}),
    },
  });
  await initTf();
  let events: ItemEvent[];
  if (opts.dataset) {
    events = (await loadDataset(opts.dataset)).items;
  } else {
    const ch = await openClickHouse(config.clickhouse);
    try {
      events = await new IngestArchive(ch).readItems();
    } finally {
      await ch.close();
    }
  }
  if (opts.newItems) {
    const coded = await codeNewItems({ events, store: new ArtifactStore(config.artifacts.dir), registryFile: config.artifacts.registryFile, features: config.features });
    process.stdout.write(
      coded
        ? `coded ${coded.newItems} new items with the existing codebooks (${coded.items} items): ${coded.semanticIds.id} (v${coded.semanticIds.manifest.version}), embeddings ${coded.embeddings.id}\n`
        : 'no new items since the last rebuild\n',
    );
    return;
  }
  // With `all`, the configured method runs last so that it becomes the latest version.
  const methods = opts.method === 'all' ? [...METHODS.filter((m) => m !== config.quantizer.method), config.quantizer.method] : [config.quantizer.method];
  const quantizers: QuantizerSettingsInput[] = methods.map((method) => ({ ...config.quantizer, method }));
  const bars = new Map<string, ReturnType<typeof progressBar>>();
  const started = Date.now();
  const result = await rebuild({
    events,
    store: new ArtifactStore(config.artifacts.dir),
    registryFile: config.artifacts.registryFile,
    features: config.features,
    quantizers,
    rng: new Random(config.artifacts.seed),
    disambiguate: opts.disambiguate ?? false,
    progress: (step, done, total) => {
      let bar = bars.get(step);
      if (!bar) {
        for (const b of bars.values()) b.stop();
        bar = progressBar(step.padEnd(16), total, step === 'cache' ? 'bytes' : 'items');
        bars.set(step, bar);
      }
      bar.update(done);
      if (done >= total) bar.stop();
    },
  });
  for (const b of bars.values()) b.stop();
  const out = process.stdout;
  out.write(`\nrebuild: ${result.items} items, fields ${result.fields.join(', ')}, ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  out.write(`  embeddings ${result.embeddings.id} (v${result.embeddings.manifest.version}), pca ${result.pca.id}\n\n`);
  printTable(
    result.builds.map((b) => ({
      method: b.quantizer.kind,
      codebooks: `${b.quantizer.levels} x ${b.quantizer.codesPerLevel}`,
      train_s: b.trainSeconds.toFixed(2),
      rel_mse: (b.metrics.relMse ?? NaN).toFixed(4),
      codes_used: `${(b.metrics.meanFractionUsed * 100).toFixed(1)}%`,
      perplexity: b.metrics.meanPerplexity.toFixed(1),
      collisions: `${(b.metrics.collisionRate * 100).toFixed(2)}%`,
      semantic_ids: `${b.semanticIds.id} (v${b.semanticIds.manifest.version})`,
    })),
  );
}
