import type { ArtifactStore, LoadedArtifact } from '../infra/artifacts';
import { createMatrix, type Matrix } from '../infra/matrix';
import { Catalog, ItemRegistry, runFeaturesJobFromConfig, type FeaturesConfig } from '../features';
import { createLogger } from '../logging';
import type { Random } from '../random';
import type { ItemEvent, ItemTextField } from '../schemas/events';
import type { QuantizerSettingsInput } from './config';
import { buildSemanticIds, type SemanticIdBuild } from './pipeline';

const log = createLogger('quantizer.rebuild');

/** `(step, done, total)`: the features job's steps, then `quantize:<method>`. */
export type RebuildProgress = (step: string, done: number, total: number) => void;

export interface RebuildOptions {
  /** Catalog events: a dataset's items or the ClickHouse `items` archive. */
  readonly events: Iterable<ItemEvent> | AsyncIterable<ItemEvent>;
  readonly store: ArtifactStore;
  /** The persisted item registry; existing items keep their dense ids. */
  readonly registryFile: string;
  readonly features: FeaturesConfig;
  /** One or more quantizer settings: each writes its own codebooks and semantic-ID versions, in order. */
  readonly quantizers: readonly QuantizerSettingsInput[];
  readonly rng: Random;
  readonly disambiguate?: boolean;
  readonly progress?: RebuildProgress;
  readonly job?: string;
}

export interface RebuildResult {
  readonly items: number;
  readonly fields: readonly ItemTextField[];
  readonly embeddings: LoadedArtifact;
  readonly pca: LoadedArtifact;
  /** The matrix the quantizers were fitted on: the fields' whitened embeddings side by side. */
  readonly matrix: Matrix;
  readonly builds: readonly SemanticIdBuild[];
  readonly registryHash: string;
}

/** The per-field `[N, K]` matrices side by side: `[N, K * fields]`. */
export function concatFields(matrices: ReadonlyMap<ItemTextField, Matrix>, fields: readonly ItemTextField[]): Matrix {
  const parts = fields.map((f) => matrices.get(f) as Matrix);
  const rows = parts[0]?.rows ?? 0;
  const cols = parts.reduce((n, m) => n + m.cols, 0);
  const out = createMatrix(rows, cols);
  for (let r = 0; r < rows; r++) {
    let offset = r * cols;
    for (const m of parts) {
      out.data.set(m.data.subarray(r * m.cols, (r + 1) * m.cols), offset);
      offset += m.cols;
    }
  }
  return out;
}

/**
 * The periodic batch job of features/ and quantizer/: catalog -> item registry (append-only) ->
 * cleaned texts -> embeddings per field -> PCA whitening (fitted once, stored) -> semantic IDs
 * with each requested quantizer. Everything lands in the artifact store with manifests that
 * link the outputs to their inputs.
 */
export async function rebuild(options: RebuildOptions): Promise<RebuildResult> {
  const job = options.job ?? 'streamrec rebuild';
  const registry = await ItemRegistry.open(options.registryFile);
  const catalog = new Catalog(registry);
  const applied = await catalog.applyAll(options.events);
  await registry.save();
  log.info({ items: catalog.size, ...applied }, 'catalog loaded');

  const features = await runFeaturesJobFromConfig(catalog, options.store, options.features, options.rng.fork(), options.progress);
  const matrix = concatFields(features.matrices, features.fields);
  const builds: SemanticIdBuild[] = [];
  for (const settings of options.quantizers) {
    const method = settings.method ?? 'rqkmeans';
    options.progress?.(`quantize:${method}`, 0, 1);
    builds.push(
      await buildSemanticIds({
        store: options.store,
        matrix,
        settings,
        rng: options.rng.fork(),
        inputs: [
          { role: 'embeddings', hash: features.embeddings.id, artifactId: features.embeddings.id, description: 'whitened text embeddings per field' },
          { role: 'item_registry', hash: registry.hash(), description: 'dense id assignment' },
        ],
        job,
        disambiguate: options.disambiguate ?? false,
      }),
    );
    options.progress?.(`quantize:${method}`, 1, 1);
  }
  return {
    items: catalog.size,
    fields: features.fields,
    embeddings: features.embeddings,
    pca: features.pca,
    matrix,
    builds,
    registryHash: registry.hash(),
  };
}
