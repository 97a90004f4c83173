import { randomBytes } from 'node:crypto';
import type { ArtifactStore } from '../infra/artifacts';
import { initTf } from '../infra/tf';
import type { Instrumentation } from '../instrumentation';
import type { LoadedDataset } from '../datasets';
import { Random } from '../random';
import {
  EvalConfig,
  TrainConfig,
  fitModel,
  dataWatermarkOf,
  leaveOneOutSplit,
  saveCheckpoint,
  type EpochRow,
  type FitResult,
  type TrainingObserver,
} from '../trainer';
import { loadServableModel, type ServableCatalog } from './servable';
import { combineObservers } from './sink';
import type { z } from 'zod';

export interface FineTuneJobOptions {
  readonly store: ArtifactStore;
  /** The checkpoint to start from (artifact id in `store`, or a directory). */
  readonly checkpoint: string;
  /** The catalog the fine-tuned model scores (default `latest`: items added since join in, CCFRec only). */
  readonly catalog?: ServableCatalog;
  /** What to fine-tune on, split leave-one-out: its train rows are the updates, its valid rows pick the best micro-epoch. */
  readonly dataset: LoadedDataset;
  /**
   * Training settings; defaults are the trainer's but for what continuing a trained model needs:
   * one epoch (a micro-epoch), no warm-up, a tenth of the learning rate. A checkpoint with
   * optimizer state (moments and step) is continued from it; one without starts fresh moments.
   */
  readonly train?: z.input<typeof TrainConfig>;
  readonly eval?: z.input<typeof EvalConfig>;
  /** Receives `trainer.progress` and `trainer.micro_epoch_end`. */
  readonly instrumentation?: Instrumentation;
  readonly observer?: TrainingObserver;
  readonly runId?: string;
  readonly signal?: AbortSignal;
}

export interface FineTuneJobResult {
  readonly runId: string;
  readonly parent: string;
  readonly checkpointId: string;
  readonly fit: FitResult;
  /** Items of the catalog added since the parent was trained (scored and trained from their codes and text). */
  readonly appendedItems: number;
}

/**
 * The fine-tune job: a trained checkpoint continues training on new data for a few micro-epochs
 * (keeping the micro-epoch with the best validation metric), over the catalog as it is now, and
 * is saved as a new checkpoint whose manifest names its parent. Each micro-epoch is reported as
 * `trainer.micro_epoch_end`. Publishing it is a separate decision (the publish job and its gate).
 */
export async function runFineTuneJob(options: FineTuneJobOptions): Promise<FineTuneJobResult> {
  const backend = await initTf();
  // With its training state: a checkpoint that has optimizer moments is continued from them.
  const servable = await loadServableModel(options.store, options.checkpoint, { catalog: options.catalog ?? 'latest', withTrainingState: true });
  const { model, settings } = servable;
  try {
    const train = TrainConfig.parse({ epochs: 1, warmupSteps: 0, learningRate: 1e-4, ...options.train });
    const evalConfig = EvalConfig.parse(options.eval ?? {});
    const data = leaveOneOutSplit(options.dataset, servable.items);
    const runId = options.runId ?? `finetune-${settings.modelType}-${new Date().toISOString().replace(/[-:.]/g, '').slice(0, 15)}-${randomBytes(3).toString('hex')}`;
    const instrumentation = options.instrumentation;
    const microEpochs: TrainingObserver | undefined = instrumentation
      ? {
          runStarted: () => undefined,
          epochEnded: (row: EpochRow) =>
            instrumentation.emit('trainer.micro_epoch_end', { runId, epoch: row.epoch, samples: row.samples, loss: row.loss.total ?? Number.NaN, durationMs: row.durationSeconds * 1000 }),
          evaluated: () => undefined,
          runEnded: () => undefined,
        }
      : undefined;
    const observer = combineObservers(options.observer, microEpochs);
    const fit = await fitModel({
      model,
      data,
      maxHistoryLength: servable.maxHistoryLength,
      train,
      eval: evalConfig,
      rng: new Random(train.seed),
      runId,
      ...(observer ? { observer } : {}),
      ...(instrumentation ? { onProgress: (p) => instrumentation.emit('trainer.progress', p) } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
      ...(servable.trainingState?.optimizer ? { optimizer: servable.trainingState.optimizer } : {}),
    });
    const artifact = await saveCheckpoint(options.store, model, {
      ...(servable.sideInfo ? { sideInfo: servable.sideInfo } : {}),
      dataWatermark: dataWatermarkOf(data),
      backend: backend.backend,
      runId,
      epoch: fit.bestEpoch,
      // A SASRec model's prior reads text tables it does not carry; it is tuned again if wanted.
      ...(settings.textPrior && servable.sideInfo ? { textPrior: settings.textPrior } : {}),
      metrics: { valid: fit.bestValid, usersValid: data.valid.count, excludeHistory: evalConfig.excludeHistory, parent: servable.checkpointId },
      // The optimizer goes on from here (no stream position: it trained on a dataset, not the stream).
      trainingState: { optimizer: fit.optimizerState },
      job: 'streamrec finetune',
      parent: servable.checkpointId,
    });
    return { runId, parent: servable.checkpointId, checkpointId: artifact.id, fit, appendedItems: servable.appendedItems };
  } finally {
    servable.dispose();
  }
}
