import { ConfigError } from '../errors';
import { ArtifactStore } from '../infra/artifacts';
import { IngestArchive, openClickHouse } from '../infra/clickhouse';
import { initTf } from '../infra/tf';
import type { Instrumentation } from '../instrumentation';
import { loadDataset } from '../datasets';
import { QuantizerMethod, type QuantizerSettingsInput } from '../quantizer';
import { codeNewItems, rebuild, type CodeNewItemsResult, type RebuildResult } from '../quantizer/rebuild';
import { Random } from '../random';
import type { ItemEvent } from '../schemas/events';
import type { AppConfig } from './config';
import type { DataSource } from './data';
import { recordSemanticIdBuilds, semanticIdBuildRow } from './semanticIdRows';

export interface RebuildJobOptions {
  readonly source: DataSource;
  /** Fit every quantizer method (one semantic-ID version each; the configured method last, so it is the latest). */
  readonly allMethods?: boolean;
  /** Add the digit that makes every item's semantic ID unique. */
  readonly disambiguate?: boolean;
  /** No refit: code only the items added since the last rebuild, with its stored projection and codebooks. */
  readonly newItemsOnly?: boolean;
  /** Receives `rebuild.progress`. */
  readonly instrumentation?: Instrumentation;
}

export type RebuildJobResult =
  | { readonly kind: 'full'; readonly result: RebuildResult; readonly seconds: number }
  | { readonly kind: 'new-items'; readonly coded: CodeNewItemsResult | undefined; readonly seconds: number };

/** The catalog of a source: a dataset's items or the ClickHouse items archive. */
async function catalogOf(config: AppConfig, source: DataSource): Promise<ItemEvent[]> {
  if (source.kind === 'dataset') return (await loadDataset(source.dataset)).items;
  const ch = await openClickHouse(config.clickhouse);
  try {
    return await new IngestArchive(ch).readItems();
  } finally {
    await ch.close();
  }
}

/**
 * The rebuild job: catalog -> item registry -> cleaned texts -> embeddings -> PCA -> semantic IDs
 * (config.features and config.quantizer), every output an artifact with its manifest; or, with
 * `newItemsOnly`, the items added since the last rebuild coded with its projection and codebooks.
 */
export async function runRebuildJob(config: AppConfig, options: RebuildJobOptions): Promise<RebuildJobResult> {
  const started = performance.now();
  const seconds = (): number => (performance.now() - started) / 1000;
  await initTf();
  const events = await catalogOf(config, options.source);
  const store = new ArtifactStore(config.artifacts.dir);
  if (options.newItemsOnly) {
    if (options.allMethods || options.disambiguate) throw new ConfigError('rebuild --new-items codes with the existing codebooks: --method and --disambiguate do not apply');
    const coded = await codeNewItems({ events, store, registryFile: config.artifacts.registryFile, features: config.features });
    if (coded) await recordSemanticIdBuilds(config, [semanticIdBuildRow(coded.semanticIds, 'new_items')]);
    return { kind: 'new-items', coded, seconds: seconds() };
  }
  const configured = config.quantizer.method;
  const methods = options.allMethods ? [...QuantizerMethod.options.filter((m) => m !== configured), configured] : [configured];
  const quantizers: QuantizerSettingsInput[] = methods.map((method) => ({ ...config.quantizer, method }));
  const instrumentation = options.instrumentation;
  const result = await rebuild({
    events,
    store,
    registryFile: config.artifacts.registryFile,
    features: config.features,
    quantizers,
    rng: new Random(config.artifacts.seed),
    disambiguate: options.disambiguate ?? false,
    ...(instrumentation ? { progress: (step: string, done: number, total: number) => instrumentation.emit('rebuild.progress', { step, done, total }) } : {}),
  });
  await recordSemanticIdBuilds(
    config,
    result.builds.map((b) => semanticIdBuildRow(b.semanticIds, 'rebuild', b.trainSeconds)),
  );
  return { kind: 'full', result, seconds: seconds() };
}
