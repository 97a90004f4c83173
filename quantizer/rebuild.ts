import type { ArtifactStore, LoadedArtifact } from '../infra/artifacts';
import { createMatrix, type Matrix } from '../infra/matrix';
import { ArtifactError } from '../errors';
import {
  Catalog,
  ItemRegistry,
  createTextEncoderSpec,
  loadTextProjection,
  readItemEmbeddings,
  runFeaturesJobFromConfig,
  writeEmbeddingsArtifact,
  type FeaturesConfig,
} from '../features';
import { createLogger } from '../logging';
import type { Random } from '../random';
import type { ItemEvent, ItemTextField } from '../schemas/events';
import type { QuantizerSettingsInput } from './config';
import { buildSemanticIds, encodeNewItems, type SemanticIdBuild } from './pipeline';
import { withFileLock } from '../infra/fileLock';

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
export function rebuild(options: RebuildOptions): Promise<RebuildResult> {
  return withCatalogLock(options.registryFile, options.job ?? 'streamrec rebuild', () => rebuildHeld(options));
}

/**
 * Runs `work` while no other process writes the catalog of `registryFile` (the item registry and
 * the semantic-ID versions grown from it): a full rebuild, or new items coded between rebuilds
 * (`streamrec rebuild` run by hand beside a live trainer, two trainers). A lock file beside the
 * registry (infra/fileLock.ts).
 */
function withCatalogLock<T>(registryFile: string, what: string, work: () => Promise<T>): Promise<T> {
  return withFileLock(`${registryFile}.lock`, work, { what });
}

async function rebuildHeld(options: RebuildOptions): Promise<RebuildResult> {
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

export interface CodeNewItemsOptions {
  readonly events: Iterable<ItemEvent> | AsyncIterable<ItemEvent>;
  readonly store: ArtifactStore;
  readonly registryFile: string;
  /** The encoder settings the last rebuild used (the stored projection checks its fingerprint). */
  readonly features: FeaturesConfig;
  readonly job?: string;
  /**
   * Grow this catalog: the semantic IDs and embeddings to extend, with their codebooks and
   * projection (the newest catalog grown from a live model's semantic IDs: `latestGrownCatalog`).
   * Default: the store's latest versions (the last rebuild's lineage). A function is called once
   * the catalog lock is held, so that it sees what another writer added before it.
   */
  readonly base?: CatalogVersions | (() => Promise<CatalogVersions>);
}

/** An embeddings version and the semantic-ID version coded from it. */
export interface CatalogVersions {
  readonly embeddings: string;
  readonly semanticIds: string;
}

export interface CodeNewItemsResult {
  readonly newItems: number;
  readonly items: number;
  readonly embeddings: LoadedArtifact;
  readonly semanticIds: LoadedArtifact;
}

/**
 * Between rebuilds: items that the registry gained since the last rebuild are embedded with the
 * stored encoder state and PCA (no refit) and coded with the existing codebooks (no refit). Writes
 * a new embeddings version (old rows unchanged, new rows appended) and a new semantic-ID version;
 * existing items keep their ids and codes. Nothing is written when there is nothing new.
 */
export function codeNewItems(options: CodeNewItemsOptions): Promise<CodeNewItemsResult | undefined> {
  return withCatalogLock(options.registryFile, options.job ?? 'streamrec rebuild --new-items', () => codeNewItemsHeld(options));
}

async function codeNewItemsHeld(options: CodeNewItemsOptions): Promise<CodeNewItemsResult | undefined> {
  const job = options.job ?? 'streamrec rebuild --new-items';
  const { store } = options;
  const base = typeof options.base === 'function' ? await options.base() : options.base;
  const [embeddingsArtifact, semanticArtifact] = base
    ? await Promise.all([store.open(base.embeddings), store.open(base.semanticIds)])
    : await Promise.all([store.latest('embeddings'), store.latest('semantic_ids')]);
  // The projection the embeddings went through (the base's), else the latest one.
  const pcaId = embeddingsArtifact?.manifest.inputs.find((i) => i.role === 'pca')?.artifactId;
  const pcaArtifact = pcaId ? await store.open(pcaId) : await store.latest('pca');
  if (!pcaArtifact || !embeddingsArtifact || !semanticArtifact) {
    throw new ArtifactError(`no complete rebuild in ${store.root} (pca, embeddings and semantic IDs are needed): run a full rebuild first`);
  }
  const registry = await ItemRegistry.open(options.registryFile);
  const catalog = new Catalog(registry);
  await catalog.applyAll(options.events);
  await registry.save();
  const previous = await readItemEmbeddings(embeddingsArtifact);
  const known = previous.itemIds.length;
  const ids = registry.externalIds();
  if (ids.slice(0, known).some((id, i) => id !== previous.itemIds[i])) {
    throw new ArtifactError(`the item registry ${options.registryFile} does not extend the ids of embeddings ${embeddingsArtifact.id}: run a full rebuild`);
  }
  if (ids.length === known) return undefined;

  const spec = await createTextEncoderSpec(options.features);
  try {
    const projection = await loadTextProjection(pcaArtifact, spec);
    const fresh = ids.slice(known).map((id) => catalog.metadata(id) ?? { itemId: id, ts: 0 });
    const added = await projection.embedItems(fresh); // per field [m, K]
    const grown = new Map<ItemTextField, Matrix>();
    for (const field of previous.fields) {
      const old = previous.matrices.get(field) as Matrix;
      const extra = added.get(field) as Matrix;
      const m = createMatrix(old.rows + extra.rows, old.cols);
      m.data.set(old.data);
      m.data.set(extra.data, old.data.length);
      grown.set(field, m);
    }
    const embeddings = await writeEmbeddingsArtifact(store, ids, grown, {
      job,
      settings: { ...embeddingsArtifact.manifest.settings, appendedItems: fresh.length },
      inputs: [
        { role: 'previous', hash: embeddingsArtifact.id, artifactId: embeddingsArtifact.id, description: 'rows 1..N kept as they were' },
        { role: 'pca', hash: pcaArtifact.id, artifactId: pcaArtifact.id, description: 'the stored projection (not refitted)' },
        { role: 'item_registry', hash: registry.hash(), description: 'dense id assignment' },
      ],
      metrics: { rows: ids.length, newItems: fresh.length },
    });
    const coded = await encodeNewItems({
      store,
      semanticIds: semanticArtifact,
      vectors: concatFields(added, previous.fields),
      inputs: [{ role: 'embeddings', hash: embeddings.id, artifactId: embeddings.id, description: 'embeddings with the new rows' }],
      job,
    });
    log.info({ newItems: fresh.length, embeddings: embeddings.id, semanticIds: coded.semanticIds.id }, 'new items coded with the existing codebooks');
    return { newItems: fresh.length, items: ids.length, embeddings, semanticIds: coded.semanticIds };
  } finally {
    await spec.dispose();
  }
}
