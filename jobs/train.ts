import { ArtifactError } from '../errors';
import { ArtifactStore } from '../infra/artifacts';
import { initTf } from '../infra/tf';
import type { Instrumentation } from '../instrumentation';
import type { LoadedDataset } from '../datasets';
import { latestGrownCatalog, loadArtifactSideInfo, trainAndEvaluate, type ArtifactSideInfo, type TrainAndEvaluateResult, type TrainerConfig, type TrainingObserver } from '../trainer';
import type { AppConfig } from './config';
import { loadSource, sourceFlag, type DataSource } from './data';
import { combineObservers, openTrainingSink } from './sink';

export interface TrainJobOptions {
  readonly config: AppConfig;
  /** The run's trainer settings (see trainerConfigFromFlags). */
  readonly trainer: TrainerConfig;
  readonly source: DataSource;
  /** Write run, epoch and evaluation rows to ClickHouse (config.clickhouse). */
  readonly writeRows: boolean;
  /** A dataset already loaded from `source` (the demo has it in hand). */
  readonly dataset?: LoadedDataset;
  /** Receives `trainer.progress`. */
  readonly instrumentation?: Instrumentation;
  /** Where the best checkpoint goes: default the config's artifact store; null: none is written. */
  readonly checkpointStore?: ArtifactStore | null;
  /** Also gets the run's rows (besides ClickHouse). */
  readonly observer?: TrainingObserver;
  readonly runId?: string;
  readonly signal?: AbortSignal;
  /**
   * Train on the catalog of these semantic IDs (the newest version grown from them), not the
   * store's latest: the live trainer's rebuilt candidate, whose store also holds the live lineage's.
   */
  readonly semanticIds?: string;
  /** Awaited between training steps: work that must go first on this thread holds it (the live trainer's micro-epochs). */
  readonly pause?: () => Promise<void>;
}

export interface TrainJobResult extends TrainAndEvaluateResult {
  /** The side information the run used (CCFRec, or any model with a text prior); undefined for SASRec alone. */
  readonly artifacts?: ArtifactSideInfo;
}

/** The context reason of the error {@link sideInfoFor} throws when items have no semantic IDs. */
export const UNCOVERED_ITEMS = 'uncovered_items';

/**
 * The side information of the store's latest rebuild (or of the newest catalog grown from
 * `semanticIds`) when it covers every item of the dataset; CCFRec (and a text prior) cannot do
 * without it, SASRec alone goes without.
 */
export async function sideInfoFor(store: ArtifactStore, dataset: LoadedDataset, trainer: TrainerConfig, source: DataSource, semanticIds?: string): Promise<ArtifactSideInfo | undefined> {
  const needed = trainer.model.type === 'ccfrec' || trainer.eval.textPrior.weights.length > 0;
  const why = trainer.model.type === 'ccfrec' ? 'CCFRec needs' : 'the text prior needs';
  let artifacts: ArtifactSideInfo;
  try {
    artifacts = await loadArtifactSideInfo(store, semanticIds ? await latestGrownCatalog(store, semanticIds) : {});
  } catch (error) {
    if (!needed && error instanceof ArtifactError) return undefined;
    throw new ArtifactError(`${why} semantic IDs and text embeddings of ${dataset.name}: run \`streamrec rebuild ${sourceFlag(source)}\` first`, { cause: error });
  }
  const missing = dataset.items.filter((i) => artifacts.itemIds.denseId(i.itemId) === undefined).length;
  if (missing === 0) return artifacts;
  if (!needed) return undefined;
  throw new ArtifactError(`the latest semantic IDs do not cover ${missing} items of ${dataset.name}: run \`streamrec rebuild ${sourceFlag(source)}\``, { context: { reason: UNCOVERED_ITEMS, missing } });
}

/**
 * The training job: the source split leave-one-out, the model trained with early stopping,
 * evaluated with full ranking (and the text prior tuned when asked), the best checkpoint written
 * to the artifact store, the rows to ClickHouse. Progress goes out as `trainer.progress`.
 */
export async function runTrainJob(options: TrainJobOptions): Promise<TrainJobResult> {
  const { config, trainer, instrumentation } = options;
  await initTf();
  const dataset = options.dataset ?? (await loadSource(config, options.source));
  const store = new ArtifactStore(config.artifacts.dir);
  const artifacts = await sideInfoFor(store, dataset, trainer, options.source, options.semanticIds);
  const sink = await openTrainingSink(config, options.writeRows);
  try {
    const observer = combineObservers(sink.observer, options.observer);
    const checkpoints = options.checkpointStore === undefined ? store : options.checkpointStore;
    const result = await trainAndEvaluate({
      dataset,
      config: trainer,
      ...(checkpoints ? { store: checkpoints } : {}),
      ...(artifacts ? { itemIds: artifacts.itemIds, sideInfo: artifacts.sideInfo } : {}),
      ...(observer ? { observer } : {}),
      ...(instrumentation ? { onProgress: (p) => instrumentation.emit('trainer.progress', p) } : {}),
      ...(options.runId ? { runId: options.runId } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.pause ? { pause: options.pause } : {}),
    });
    return { ...result, ...(artifacts ? { artifacts } : {}) };
  } finally {
    await sink.close();
  }
}
