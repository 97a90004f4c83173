import { ArtifactError, ValidationError } from '../errors';
import type { ArtifactStore } from '../infra/artifacts';
import { initTf, tf } from '../infra/tf';
import { WeakValues } from '../infra/weakValues';
import type { ArtifactManifest } from '../schemas/artifacts';
import {
  TextPrior,
  type ArtifactSideInfo,
  type CheckpointInputs,
  textPriorTableInSlices,
  checkpointInputs,
  latestGrownCatalog,
  loadArtifactSideInfo,
  loadCheckpoint,
  type CheckpointSettings,
  type TrainingState,
  type ItemIdMapping,
  type ItemSideInfo,
  type ModelConfig,
  type ModelType,
  type SequenceBatch,
  type ItemTextTables,
  type SequentialRecommender,
  type TextPriorSettings,
  type TextPriorTable,
} from '../trainer';

/**
 * Which catalog a servable model scores:
 * - `trained` (default): the items it was trained on, with the side information it names;
 * - `latest`: the catalog as it has grown since training (new items coded with the same codebooks,
 *   their text projected with the stored PCA): for CCFRec the newest semantic IDs grown from its
 *   own (`latestGrownCatalog`; another full rebuild in the store is not its lineage and is never
 *   chosen), whose new items it scores from their codes and text; a SASRec model keeps its trained
 *   catalog (it has no embedding for a new item) and counts, against the store's latest, what it
 *   cannot score in `unscoredItems`;
 * - explicit artifact ids of embeddings and semantic IDs (CCFRec).
 */
export type ServableCatalog = 'trained' | 'latest' | { readonly embeddings: string; readonly semanticIds: string };

export interface LoadServableOptions {
  readonly catalog?: ServableCatalog;
  /** Also read the run's state (optimizer, generator, stream position) when the checkpoint has one: the live loop continues it. */
  readonly withTrainingState?: boolean;
}

/** A checkpoint made ready to score: the model with everything it needs to rank items for histories. */
export interface ServableModel {
  readonly checkpointId: string;
  readonly modelType: ModelType;
  /** The model's settings, parsed by its own schema. */
  readonly config: ModelConfig;
  readonly model: SequentialRecommender;
  /** External <-> dense item ids of the catalog it scores (dense 1..N, 0 = padding). */
  readonly items: ItemIdMapping;
  /** CCFRec's semantic IDs and text tables for that catalog (undefined for SASRec). */
  readonly sideInfo?: ItemSideInfo;
  /** The item text tables of that catalog (CCFRec's, or those a SASRec model's tuned prior reads); undefined when none. */
  readonly text?: ItemTextTables;
  /** The text prior tuned with the model on validation, fused into {@link scores}; undefined when none won. */
  readonly textPrior?: TextPriorSettings;
  /** The items' text vectors that prior compares (trainer/textPrior.ts `textPriorTable`), when it has one: serving reuses them. */
  readonly textVectors?: TextPriorTable;
  /** History items the model reads (the most recent ones). */
  readonly maxHistoryLength: number;
  /** Items it was trained on, and items of the catalog appended since (scored from their codes and text). */
  readonly trainedItems: number;
  readonly appendedItems: number;
  /** Items of the latest catalog a SASRec model cannot score (0 for CCFRec). */
  readonly unscoredItems: number;
  /** The artifacts the scored catalog comes from. */
  readonly lineage: { readonly embeddings?: string; readonly semanticIds?: string; readonly pca?: string };
  readonly settings: CheckpointSettings;
  readonly manifest: ArtifactManifest;
  /** With `withTrainingState`: the run's state, when the checkpoint has one. */
  readonly trainingState?: TrainingState;
  /**
   * A batch of histories (external item ids, oldest first): ids the catalog does not know are
   * dropped, each history cut to its last `maxHistoryLength` items. A history with no known item
   * is a ValidationError naming its position. Targets are 0 (unknown).
   */
  batchOf(histories: ReadonlyArray<readonly string[]>): SequenceBatch;
  /** What serving ranks by: the model's cosine plus the tuned text prior. `[B, N + 1]`, column 0 is padding. */
  scores(batch: SequenceBatch, itemTable?: tf.Tensor2D): tf.Tensor2D;
  dispose(): void;
}

/**
 * Text-prior tables by the embeddings artifacts they are computed from, while a loaded model
 * still holds one: the versions of one rebuild's catalog (the same embeddings, the same items)
 * share one table, read and never written (at 100,000 items x 256 dims 100 MB, copied and
 * normalised over ~0.3 s), instead of each making its own while a server swaps between them.
 */
const priorTables = new WeakValues<Float32Array>();

async function priorTableOf(text: ItemTextTables): Promise<TextPriorTable> {
  const embeddings = 'artifactIds' in text ? (text as ItemSideInfo).artifactIds.textEmbeddings : undefined;
  // Without every field's artifact id (tables not read from the store) nothing says two tables are the same.
  if (!embeddings || text.textFields.some((f) => embeddings[f.name] === undefined)) return textPriorTableInSlices(text);
  const key = JSON.stringify({ itemCount: text.itemCount, fields: text.textFields.map((f) => [f.name, f.dims, embeddings[f.name]]) });
  // The array itself is held weakly (a model keeps it, not the object around it); its rows are [N + 1, dims].
  const held = priorTables.get(key);
  if (held) return { table: held, dims: held.length / (text.itemCount + 1) };
  const made = await textPriorTableInSlices(text);
  priorTables.set(key, made.table);
  return made;
}

/**
 * The newest catalog grown from semantic IDs `own` (the checkpoint's): the side information the
 * checkpoint was loaded with when that is still the newest (no new items since: the 100 MB text
 * tables of a 100,000-item catalog are not read twice), else that catalog's.
 */
async function grownCatalog(store: ArtifactStore, trained: CheckpointInputs, own: string): Promise<ArtifactSideInfo> {
  const ids = await latestGrownCatalog(store, own);
  const { sideInfo, itemIds } = trained;
  if (sideInfo && itemIds && sideInfo.artifactIds.semanticIds === ids.semanticIds && sideInfo.artifactIds.itemRegistry === ids.embeddings) return { sideInfo, itemIds };
  return loadArtifactSideInfo(store, ids);
}

async function latestOrGiven(store: ArtifactStore, catalog: Exclude<ServableCatalog, 'trained'>) {
  return catalog === 'latest' ? loadArtifactSideInfo(store) : loadArtifactSideInfo(store, catalog);
}

/**
 * Loads a checkpoint (artifact id in `store`, or a directory) as a {@link ServableModel}: the model
 * with its weights, the item ids and side information of the catalog it scores, and the text
 * prior tuned with it. Everything is checked (manifest, weights, side-information fingerprint,
 * PCA lineage of a grown catalog); anything that does not fit is an ArtifactError with the reason.
 */
export async function loadServableModel(store: ArtifactStore, checkpoint: string, options: LoadServableOptions = {}): Promise<ServableModel> {
  await initTf();
  const catalog = options.catalog ?? 'trained';
  const trained = await checkpointInputs(store, checkpoint);
  const id = trained.artifact.id;
  const type = trained.artifact.manifest.settings.modelType;
  const trainedPca = trained.artifact.manifest.inputs.find((i) => i.role === 'pca')?.artifactId;

  let sideInfo = trained.sideInfo;
  let items = trained.itemIds;
  let unscoredItems = 0;
  if (catalog !== 'trained') {
    // CCFRec's 'latest' is the newest catalog grown from its own semantic IDs, never another
    // rebuild's (whose codes and projection it was not trained on).
    const own = type === 'ccfrec' ? trained.sideInfo?.artifactIds.semanticIds : undefined;
    const chosen = catalog === 'latest' && own ? await grownCatalog(store, trained, own) : await latestOrGiven(store, catalog);
    if (type === 'ccfrec') {
      const pca = chosen.sideInfo.artifactIds.pca;
      if (trainedPca && pca && pca !== trainedPca) {
        throw new ArtifactError(
          `checkpoint ${id}: the catalog's text went through PCA ${pca}, the model was trained on PCA ${trainedPca} (a full rebuild refits it: retrain, or serve the trained catalog)`,
        );
      }
      sideInfo = chosen.sideInfo;
      items = chosen.itemIds;
    } else if (typeof catalog === 'object') {
      throw new ArtifactError(`checkpoint ${id} holds a SASRec model: it scores the catalog it was trained on only (one learned embedding per item)`);
    } else {
      unscoredItems = Math.max(0, chosen.itemIds.itemCount - (items?.itemCount ?? 0));
    }
  }
  // The text tables' lineage: CCFRec's side information names it; a SASRec model's embeddings input does.
  let embeddings = sideInfo?.artifactIds.textEmbeddings ? Object.values(sideInfo.artifactIds.textEmbeddings)[0] : undefined;
  let pca = sideInfo?.artifactIds.pca;
  if (!sideInfo && trained.text) {
    embeddings = trained.artifact.manifest.inputs.find((i) => i.role.startsWith('embeddings:'))?.artifactId;
    if (embeddings) pca = (await store.open(embeddings)).manifest.inputs.find((i) => i.role === 'pca')?.artifactId;
  }
  const loaded = await loadCheckpoint(store, trained.artifact.dir, { ...(sideInfo ? { sideInfo } : {}), ...(options.withTrainingState ? { withTrainingState: true } : {}) });
  const { model, settings } = loaded;
  if (!items) {
    model.dispose();
    throw new ArtifactError(`checkpoint ${id} names no item registry: it cannot map item ids (was it written by a run without side information?)`);
  }
  if (items.itemCount !== model.itemCount) {
    model.dispose();
    throw new ArtifactError(`checkpoint ${id}: its item registry has ${items.itemCount} items, the model scores ${model.itemCount}`);
  }
  const text = sideInfo ?? trained.text;
  if (settings.textPrior && !text) {
    model.dispose();
    throw new ArtifactError(`checkpoint ${id} was tuned with a text prior but names no text embeddings to compute it from`);
  }
  const prior = settings.textPrior && text ? new TextPrior(text, settings.textPrior, await priorTableOf(text)) : undefined;
  const maxHistoryLength = settings.model.maxHistoryLength;
  const mapping = items;
  return {
    checkpointId: id,
    modelType: settings.modelType,
    config: settings.model,
    model,
    items: mapping,
    ...(sideInfo ? { sideInfo } : {}),
    ...(text ? { text } : {}),
    ...(settings.textPrior ? { textPrior: settings.textPrior } : {}),
    ...(prior ? { textVectors: prior.vectors } : {}),
    maxHistoryLength,
    trainedItems: settings.itemCount,
    appendedItems: loaded.appendedItems,
    unscoredItems,
    lineage: {
      ...(embeddings ? { embeddings } : {}),
      ...(sideInfo?.artifactIds.semanticIds ? { semanticIds: sideInfo.artifactIds.semanticIds } : {}),
      ...(pca ? { pca } : {}),
    },
    settings,
    manifest: trained.artifact.manifest,
    ...(loaded.trainingState ? { trainingState: loaded.trainingState } : {}),
    batchOf: (histories) => historiesBatch(histories, mapping, maxHistoryLength),
    scores: (batch, itemTable) =>
      tf.tidy(() => {
        const scores = model.scoreAllItems(batch, itemTable); // [B, N + 1]
        return prior ? prior.fuse(scores, batch) : scores;
      }),
    dispose: () => {
      prior?.dispose();
      model.dispose();
    },
  };
}

/** Histories of external ids as a left-aligned batch of dense ids (unknown ids dropped). */
export function historiesBatch(histories: ReadonlyArray<readonly string[]>, items: ItemIdMapping, maxLength: number): SequenceBatch {
  return denseHistoriesBatch(
    histories.map((history, b) => knownDenseIds(history, items, b)),
    maxLength,
  );
}

/** The dense ids of the items of `history` that `items` knows, in order (one lookup per item). */
export function denseIdsOf(history: readonly string[], items: ItemIdMapping): number[] {
  const known: number[] = [];
  for (const itemId of history) {
    const dense = items.denseId(itemId);
    if (dense !== undefined) known.push(dense);
  }
  return known;
}

/** {@link denseIdsOf}, and a ValidationError naming history `b` when `items` knows none of them. */
export function knownDenseIds(history: readonly string[], items: ItemIdMapping, b: number): number[] {
  const known = denseIdsOf(history, items);
  if (known.length === 0) {
    throw new ValidationError(`history ${b}: none of its ${history.length} items is in the model's catalog (${items.itemCount} items)`, { context: { field: `histories.${b}` } });
  }
  return known;
}

/** Histories of dense ids (each non-empty, oldest first) as a left-aligned batch of their last `maxLength` items. */
export function denseHistoriesBatch(histories: ReadonlyArray<ArrayLike<number>>, maxLength: number): SequenceBatch {
  const size = histories.length;
  const batchItems = new Int32Array(size * maxLength);
  const lengths = new Int32Array(size);
  histories.forEach((history, b) => {
    if (history.length === 0) throw new ValidationError(`history ${b} is empty`, { context: { field: `histories.${b}` } });
    const from = Math.max(0, history.length - maxLength);
    for (let t = from; t < history.length; t++) batchItems[b * maxLength + t - from] = history[t] as number;
    lengths[b] = history.length - from;
  });
  return { size, maxLength, items: batchItems, lengths, targets: new Int32Array(size) };
}
