import { randomBytes } from 'node:crypto';
import { ConfigError } from '../errors';
import { initTf } from '../infra/tf';
import type { ArtifactStore } from '../infra/artifacts';
import { loadDataset, type LoadedDataset } from '../datasets';
import { createLogger } from '../logging';
import { Random } from '../random';
import { saveCheckpoint } from './checkpoint';
import { parseTrainerConfig, type TrainerConfig, type TrainerConfigInput } from './config';
import { dataWatermarkOf, historyOf, leaveOneOutSplit, type LeaveOneOutData, type SequenceExamples } from './data';
import { evaluateFullRanking, tuneTextPrior, type EvaluationResult, type TextPriorTuning } from './evaluate';
import { createModel } from './models';
import { evaluationRows, type ProgressCallback, type TrainingObserver } from './observer';
import { itemIdMappingFromList, type ItemIdMapping, type ItemSideInfo } from './sideInfo';
import type { TextPriorSettings } from './textPrior';
import { evaluateFixedScores, popularityScores } from './popularity';
import { fitModel, type FitResult } from './trainLoop';

const log = createLogger('trainer.experiment');

export interface TrainAndEvaluateOptions {
  /** `scientific`, `ml-100k`, a dataset directory, or a dataset already loaded. */
  readonly dataset: string | LoadedDataset;
  /** Trainer settings; `model.type` is required, everything else has defaults. */
  readonly config: TrainerConfigInput | TrainerConfig;
  /**
   * External -> dense item ids (the item registry). Defaults to the dataset's catalog order,
   * which is only right when no side information is used (SASRec).
   */
  readonly itemIds?: ItemIdMapping;
  /**
   * Semantic IDs and text embeddings, in the same dense ids as `itemIds`: required by CCFRec and by
   * the text prior (`eval.textPrior`); SASRec itself ignores them.
   */
  readonly sideInfo?: ItemSideInfo;
  /** Where the best checkpoint is written; none is written without a store. */
  readonly store?: ArtifactStore;
  readonly observer?: TrainingObserver;
  readonly onProgress?: ProgressCallback;
  readonly runId?: string;
  readonly signal?: AbortSignal;
  /** Awaited between training steps (see the train loop's `pause`). */
  readonly pause?: () => Promise<void>;
}

export interface TrainAndEvaluateResult {
  readonly runId: string;
  readonly config: TrainerConfig;
  readonly backend: string;
  readonly data: { readonly name: string; readonly protocol: string; readonly itemCount: number; readonly train: number; readonly valid: number; readonly test: number };
  readonly fit: FitResult;
  /** Test metrics of the best (validation) weights. */
  readonly test: EvaluationResult;
  /** The popularity baseline on the same test split, with the same metrics and history rule. */
  readonly popularity: EvaluationResult;
  /** With `eval.textPrior.weights`: the (weight, query length) chosen on validation and its valid/test metrics. */
  readonly textPrior?: TextPriorTuning;
  readonly checkpointId?: string;
}

/** Input artifact ids of a run: the item registry always, the codes and text embeddings for CCFRec only. */
function artifactsOf(info: ItemSideInfo | undefined, modelType: 'ccfrec' | 'sasrec', textPrior: boolean): Record<string, string> {
  const out: Record<string, string> = {};
  if (!info) return out;
  const ids = info.artifactIds;
  if (ids.itemRegistry) out.itemRegistry = ids.itemRegistry;
  if (modelType !== 'ccfrec') {
    // SASRec reads the text embeddings only for the text prior.
    if (textPrior) for (const [field, id] of Object.entries(ids.textEmbeddings ?? {})) out[`textEmbeddings.${field}`] = id;
    return out;
  }
  if (ids.semanticIds) out.semanticIds = ids.semanticIds;
  if (ids.pca) out.pca = ids.pca;
  for (const [field, id] of Object.entries(ids.textEmbeddings ?? {})) out[`textEmbeddings.${field}`] = id;
  return out;
}

/**
 * One complete run: split the dataset (leave-one-out), train with early stopping on the
 * validation split, evaluate the best weights on the test split with full ranking, write the
 * checkpoint, and report everything to the observer. This is what `streamrec train` runs.
 */
export async function trainAndEvaluate(options: TrainAndEvaluateOptions): Promise<TrainAndEvaluateResult> {
  const backend = await initTf();
  const config = parseTrainerConfig(options.config);
  const dataset = typeof options.dataset === 'string' ? await loadDataset(options.dataset) : options.dataset;
  const itemIds = options.itemIds ?? itemIdMappingFromList(dataset.items.map((i) => i.itemId));
  const data: LeaveOneOutData = leaveOneOutSplit(dataset, itemIds);
  const priorWeights = config.eval.textPrior.weights;
  if (priorWeights.length > 0 && !options.sideInfo) {
    throw new ConfigError('eval.textPrior.weights is set but no side information (item text embeddings) was given: run `streamrec rebuild` first', {
      context: { field: 'eval.textPrior.weights' },
    });
  }
  const runId = options.runId ?? `${config.model.type}-${dataset.name}-${new Date().toISOString().replace(/[-:.]/g, '').slice(0, 15)}-${randomBytes(3).toString('hex')}`;
  const rng = new Random(config.train.seed);
  const model = createModel(config.model, { itemCount: data.itemCount, ...(options.sideInfo ? { sideInfo: options.sideInfo } : {}) }, rng.fork());
  const observer = options.observer;
  const excludeHistory = config.eval.excludeHistory;
  await observer?.runStarted({
    runId,
    model: config.model.type,
    config,
    dataset: data.name,
    protocol: data.protocol,
    artifacts: artifactsOf(options.sideInfo, config.model.type, priorWeights.length > 0),
    backend: backend.backend,
    backendReason: backend.reason,
    trainExamples: data.train.count,
    startedAt: new Date(),
  });
  log.info({ runId, model: config.model.type, dataset: data.name, train: data.train.count, items: data.itemCount, backend: backend.backend }, 'run start');
  let fit: FitResult | undefined;
  try {
    fit = await fitModel({
      model,
      data,
      maxHistoryLength: config.model.maxHistoryLength,
      train: config.train,
      eval: config.eval,
      rng: rng.fork(),
      runId,
      ...(observer ? { observer } : {}),
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.pause ? { pause: options.pause } : {}),
    });
    const onProgress = options.onProgress;
    const finalEpoch = fit.epochs - 1;
    const test = await evaluateFullRanking(model, data.test, config.model.maxHistoryLength, {
      ks: config.eval.ks,
      excludeHistory,
      batchSize: config.eval.batchSize,
      ...(onProgress ? { onBatch: (done: number, total: number) => onProgress({ phase: 'evaluate', epoch: finalEpoch, epochs: config.train.epochs, step: done, steps: total }) } : {}),
    });
    const popularity = evaluateFixedScores(popularityScores(data.train, data.itemCount), data.test, { ks: config.eval.ks, excludeHistory });
    let textPrior: TextPriorTuning | undefined;
    if (priorWeights.length > 0) {
      textPrior = await tuneTextPrior(
        model,
        options.sideInfo as ItemSideInfo,
        data,
        config.model.maxHistoryLength,
        { weights: priorWeights, lastItems: config.eval.textPrior.lastItems, pooling: config.eval.textPrior.pooling },
        config.train.validMetric,
        { ks: config.eval.ks, excludeHistory, batchSize: config.eval.batchSize },
      );
      log.info({ runId, weight: textPrior.weight, lastItems: textPrior.lastItems, pooling: textPrior.pooling, test: textPrior.test.metrics }, 'text prior tuned');
    }
    // A prior that lost to the model alone (weight 0) is reported but neither stored nor written as rows.
    const fused: TextPriorSettings | undefined =
      textPrior?.pooling !== undefined && textPrior.weight > 0 ? { weight: textPrior.weight, lastItems: textPrior.lastItems, pooling: textPrior.pooling } : undefined;
    let checkpointId: string | undefined;
    if (options.store) {
      const artifact = await saveCheckpoint(options.store, model, {
        ...(options.sideInfo ? { sideInfo: options.sideInfo } : {}),
        dataWatermark: dataWatermarkOf(data),
        backend: backend.backend,
        runId,
        epoch: fit.bestEpoch,
        ...(fused ? { textPrior: fused } : {}),
        // What continuing the run needs: micro-epochs go on from this optimizer and stream position.
        // The validation and test targets (each user's last two events below the stream position)
        // were never trained on: the live loop trains them at its first micro-epoch.
        trainingState: {
          optimizer: fit.optimizerState,
          ...(dataset.streamOffsets ? { stream: { offsets: { ...dataset.streamOffsets }, pending: untrainedRows([data.test, data.valid], config.model.maxHistoryLength) } } : {}),
        },
        metrics: {
          valid: fit.bestValid,
          test: test.metrics,
          excludeHistory,
          usersValid: data.valid.count,
          usersTest: test.users,
          ...(textPrior && fused ? { textPrior: { ...fused, metric: textPrior.metric, valid: textPrior.valid.metrics, test: textPrior.test.metrics } } : {}),
        },
      });
      checkpointId = artifact.id;
    }
    const modelVersion = checkpointId ?? `${runId}:epoch-${fit.bestEpoch}`;
    const rowBase = { runId, modelVersion, excludeHistory, epoch: fit.bestEpoch, evaluatedAt: new Date() };
    await observer?.evaluated(evaluationRows({ ...rowBase, split: 'test', usersEvaluated: test.users }, test.metrics));
    if (textPrior && fused) {
      await observer?.evaluated([
        ...evaluationRows({ ...rowBase, split: 'valid', usersEvaluated: textPrior.valid.users, textPrior: fused }, textPrior.valid.metrics),
        ...evaluationRows({ ...rowBase, split: 'test', usersEvaluated: textPrior.test.users, textPrior: fused }, textPrior.test.metrics),
      ]);
    }
    await observer?.runEnded({
      runId,
      status: fit.status,
      endedAt: new Date(),
      epochs: fit.epochs,
      bestEpoch: fit.bestEpoch,
      bestValid: fit.bestValid,
      ...(checkpointId ? { checkpointId } : {}),
    });
    log.info({ runId, status: fit.status, bestEpoch: fit.bestEpoch, test: test.metrics, excludeHistory, checkpointId, textPriorWeight: textPrior?.weight }, 'run end');
    return {
      runId,
      config,
      backend: backend.backend,
      data: { name: data.name, protocol: data.protocol, itemCount: data.itemCount, train: data.train.count, valid: data.valid.count, test: data.test.count },
      fit,
      test,
      popularity,
      ...(textPrior ? { textPrior } : {}),
      ...(checkpointId ? { checkpointId } : {}),
    };
  } catch (error) {
    await observer?.runEnded({
      runId,
      status: 'failed',
      endedAt: new Date(),
      epochs: fit?.epochs ?? 0,
      bestEpoch: fit?.bestEpoch ?? -1,
      bestValid: fit?.bestValid ?? {},
      error: error instanceof Error ? error.message : String(error),
    });
    throw error;
  } finally {
    model.dispose();
  }
}

/**
 * Most rows of a first model's untrained examples kept in its checkpoint (newest first: test
 * targets, then validation targets). They live in the manifest's JSON, which every open of the
 * checkpoint parses (a server's swap too), and a micro-epoch samples its bounded steps from them
 * with the window's own examples: more would only dilute the first window.
 */
const MAX_UNTRAINED_ROWS = 10_000;

/** Examples as checkpoint rows (histories cut to the model's last `maxHistoryLength` items), at most MAX_UNTRAINED_ROWS. */
function untrainedRows(splits: readonly SequenceExamples[], maxHistoryLength: number): Array<{ history: number[]; target: number }> {
  const rows: Array<{ history: number[]; target: number }> = [];
  for (const examples of splits) {
    for (let i = 0; i < examples.count && rows.length < MAX_UNTRAINED_ROWS; i++) {
      const history = historyOf(examples, i);
      if (history.length > 0) rows.push({ history: Array.from(history.subarray(Math.max(0, history.length - maxHistoryLength))), target: examples.targets[i] as number });
    }
  }
  return rows;
}
