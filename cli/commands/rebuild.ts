import type { Command } from 'commander';
import { ConfigError } from '../../errors';
import { dataSourceOf, runRebuildJob, withOverrides } from '../../jobs';
import { QuantizerMethod } from '../../quantizer';
import { commandConfig, type GlobalOptions } from '../config';
import { jobProgress, printRebuild } from '../report';

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

/** A positive integer flag, or a ConfigError naming it. */
function count(flag: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new ConfigError(`${flag}: expected a positive integer, got ${JSON.stringify(value)}`);
  return n;
}

export function registerRebuild(program: Command, globals: () => GlobalOptions): void {
  program
    .command('rebuild')
    .description('Rebuild item features and semantic IDs: clean texts -> embeddings -> PCA -> quantizer, with manifests')
    .option('-d, --dataset <name|dir>', 'catalog from a dataset (synthetic, ml-100k, scientific, or a directory)')
    .option('--from-clickhouse', 'catalog from the ClickHouse items archive (clickhouse.url)')
    .option('--method <name>', `quantizer: ${QuantizerMethod.options.join(', ')}, or all (one table row each)`)
    .option('--levels <n>', 'codebooks (PQ/OPQ: sub-spaces; RQ: levels)')
    .option('--codes <n>', 'codes per codebook (a power of two)')
    .option('--encoder <name>', 'text encoder: glove-sif, onnx, tfidf-lsa')
    .option('--pca-dims <n>', 'PCA (whitened) dimensions per text field')
    .option('--disambiguate', "add a last digit that makes every item's semantic ID unique")
    .option('--new-items', 'no refit: code only items added since the last rebuild, with its stored projection and codebooks')
    .action(async (opts: RebuildFlags) => {
      const source = dataSourceOf('rebuild', opts.dataset, opts.fromClickhouse);
      if (opts.method && opts.method !== 'all' && !(QuantizerMethod.options as readonly string[]).includes(opts.method)) {
        throw new ConfigError(`--method must be one of ${QuantizerMethod.options.join(', ')} or all, got ${JSON.stringify(opts.method)}`);
      }
      const config = withOverrides(commandConfig(globals()), {
        features: { ...(opts.encoder ? { encoder: opts.encoder } : {}), ...(opts.pcaDims ? { pcaDims: count('--pca-dims', opts.pcaDims) } : {}) },
        quantizer: {
          ...(opts.method && opts.method !== 'all' ? { method: opts.method } : {}),
          ...(opts.levels ? { levels: count('--levels', opts.levels) } : {}),
          ...(opts.codes ? { codesPerLevel: count('--codes', opts.codes) } : {}),
        },
      });
      const progress = jobProgress();
      try {
        const job = await runRebuildJob(config, {
          source,
          allMethods: opts.method === 'all',
          disambiguate: opts.disambiguate ?? false,
          newItemsOnly: opts.newItems ?? false,
          instrumentation: progress.instrumentation,
        });
        progress.stop();
        printRebuild(job);
      } finally {
        progress.stop();
      }
    });
}
