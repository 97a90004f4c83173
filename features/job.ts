import { ValidationError } from '../errors';
import type { ArtifactStore, LoadedArtifact } from '../infra/artifacts';
import type { ArtifactInput } from '../schemas/artifacts';
import { createLogger } from '../logging';
import type { Random } from '../random';
import type { ItemTextField } from '../schemas/events';
import type { Catalog } from './catalog';
import { CLEAN_TEXT_VERSION } from './cleanText';
import type { FeaturesConfig } from './config';
import type { TextEncoderSpec } from './encoder';
import { createTextEncoderSpec, type CreateEncoderOptions } from './encoders';
import { writeEmbeddingsArtifact } from './embeddings';
import { createMatrix, type Matrix } from '../infra/matrix';
import { applyPca, fitPca } from './pca';
import { TextProjection, writeProjectionArtifact, type FieldProjection } from './projection';

/**
 * The features job of a rebuild: catalog -> cleaned texts per field -> fit the encoder on each
 * field's texts -> encode -> fit PCA (whitening) once per field -> write the `pca` artifact (the
 * fitted projection) and the `embeddings` artifact (rows by dense item id).
 *
 * Encoder and PCA are fitted on the items that have text in the field; items without it get zero
 * rows. Deterministic for the same catalog, settings and seed, so a rerun finds the same
 * (content-addressed) artifacts.
 */

const log = createLogger('features.job');

/** `(step, done, total)`: steps are `clean`, `fit:<field>`, `encode:<field>`, `pca:<field>`, `write`. */
export type FeaturesProgress = (step: string, done: number, total: number) => void;

export interface FeaturesJobOptions {
  readonly catalog: Catalog;
  readonly store: ArtifactStore;
  readonly spec: TextEncoderSpec;
  readonly fields: FeaturesConfig['fields'];
  readonly pcaDims: number;
  readonly whiten: boolean;
  readonly random: Random;
  readonly progress?: FeaturesProgress;
  /** Name of the producing job in the manifests. */
  readonly job?: string;
}

export interface FeaturesJobResult {
  readonly fields: readonly ItemTextField[];
  /** N: rows of every embedding matrix (= registry size). */
  readonly rows: number;
  readonly pca: LoadedArtifact;
  readonly embeddings: LoadedArtifact;
  /** The fitted projection; usable while `spec` is not disposed. */
  readonly projection: TextProjection;
  /** Per field [N, pcaDims]. */
  readonly matrices: ReadonlyMap<ItemTextField, Matrix>;
}

function chooseFields(catalog: Catalog, wanted: FeaturesConfig['fields']): ItemTextField[] {
  const available = catalog.textFields();
  if (wanted === 'auto') {
    if (available.length === 0) {
      throw new ValidationError(`the catalog has no item text to embed (${catalog.size} items, ${catalog.itemsWithMetadata} with metadata)`);
    }
    return available;
  }
  const missing = wanted.filter((f) => !available.includes(f));
  if (missing.length > 0) {
    throw new ValidationError(
      `features.fields lists ${missing.join(', ')}, but no item has text there (fields with text: ${available.join(', ') || 'none'})`,
    );
  }
  return [...wanted];
}

/** Runs the features job (see the module comment). */
export async function runFeaturesJob(options: FeaturesJobOptions): Promise<FeaturesJobResult> {
  const { catalog, store, spec, pcaDims, whiten, random } = options;
  const progress = options.progress ?? (() => undefined);
  const job = options.job ?? 'streamrec features';
  const fields = chooseFields(catalog, options.fields);
  const rows = catalog.size;

  progress('clean', 0, fields.length);
  const texts = new Map<ItemTextField, string[]>();
  fields.forEach((field, i) => {
    texts.set(field, catalog.fieldTexts(field));
    progress('clean', i + 1, fields.length);
  });

  const projections: FieldProjection[] = [];
  const matrices = new Map<ItemTextField, Matrix>();
  const counts: Record<string, number> = {};
  for (const field of fields) {
    const all = texts.get(field) as string[];
    const present = all.map((t, i) => (t.length > 0 ? i : -1)).filter((i) => i >= 0);
    const corpus = present.map((i) => all[i] as string);
    counts[field] = corpus.length;
    if (corpus.length < 2) {
      throw new ValidationError(`field ${field} has text for ${corpus.length} item(s); PCA needs at least 2`, { context: { field } });
    }
    progress(`fit:${field}`, 0, 1);
    const encoder = await spec.fit(corpus, random.fork());
    progress(`fit:${field}`, 1, 1);
    const encoded = await encoder.encode(corpus, { onProgress: (done, total) => progress(`encode:${field}`, done, total) }); // [P, D]
    progress(`pca:${field}`, 0, 1);
    const pca = fitPca(encoded, pcaDims, { whiten });
    progress(`pca:${field}`, 1, 1);
    projections.push({ field, encoder, pca });
    // The same two steps as TextProjection.transformField, without encoding twice.
    const projected = applyPca(pca, encoded); // [P, K]
    const full = createMatrix(rows, pcaDims); // [N, K], zero rows for items without text
    present.forEach((row, p) => full.data.set(projected.data.subarray(p * pcaDims, (p + 1) * pcaDims), row * pcaDims));
    matrices.set(field, full);
    log.info({ field, texts: corpus.length, rows, encoderDims: encoder.dims, pcaDims }, 'field embedded');
  }

  const projection = new TextProjection(projections, spec.fingerprint());
  const catalogHash = catalog.snapshotHash();
  const settings = {
    encoder: spec.name,
    encoderSettings: spec.settings(),
    fields,
    pcaDims,
    whiten,
    cleanTextVersion: CLEAN_TEXT_VERSION,
    seed: random.seed,
  };
  const inputs: ArtifactInput[] = [
    { role: 'catalog', hash: catalogHash, description: 'catalog snapshot (ids and raw texts in dense-id order)' },
    { role: 'item_registry', hash: catalog.registry.hash(), description: 'dense id assignment' },
    { role: 'encoder', hash: spec.fingerprint(), description: `${spec.name} model and settings` },
    ...projections.map((p) => ({ role: `encoder.${p.field}`, hash: p.encoder.fingerprint(), description: `fitted ${spec.name} state for ${p.field}` })),
  ];
  progress('write', 0, 2);
  const pca = await writeProjectionArtifact(store, projection, { job, settings, inputs, metrics: { textsPerField: counts } });
  progress('write', 1, 2);
  const embeddings = await writeEmbeddingsArtifact(store, catalog.registry.externalIds(), matrices, {
    job,
    settings,
    inputs: [...inputs, { role: 'pca', hash: pca.id, artifactId: pca.id, description: 'the fitted projection' }],
    metrics: { rows, textsPerField: counts },
  });
  progress('write', 2, 2);
  return { fields, rows, pca, embeddings, projection: new TextProjection(projections, spec.fingerprint(), pca.id), matrices };
}

/**
 * The job as the CLI runs it: builds the encoder from `config`, runs, releases the encoder (so
 * the result has no live projection; load one with `loadTextProjection`). `progress` also gets
 * `cache` steps (bytes of the GloVe JSON) while the GloVe cache is built the first time.
 */
export async function runFeaturesJobFromConfig(
  catalog: Catalog,
  store: ArtifactStore,
  config: FeaturesConfig,
  random: Random,
  progress?: FeaturesProgress,
): Promise<Omit<FeaturesJobResult, 'projection'>> {
  const encoderOptions: CreateEncoderOptions = progress ? { onCacheProgress: (done, total) => progress('cache', done, total) } : {};
  const spec = await createTextEncoderSpec(config, encoderOptions);
  try {
    const { projection: _released, ...result } = await runFeaturesJob({
      catalog,
      store,
      spec,
      fields: config.fields,
      pcaDims: config.pcaDims,
      whiten: config.whiten,
      random,
      ...(progress ? { progress } : {}),
    });
    return result;
  } finally {
    await spec.dispose();
  }
}
