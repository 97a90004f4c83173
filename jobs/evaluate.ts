import { ConfigError } from '../errors';
import { ArtifactStore } from '../infra/artifacts';
import { initTf } from '../infra/tf';
import type { Instrumentation } from '../instrumentation';
import {
  TextPrior,
  checkpointInputs,
  evaluateFullRanking,
  evaluationRows,
  itemIdMappingFromList,
  leaveOneOutSplit,
  loadCheckpoint,
  type EvalConfig,
  type EvaluationResult,
  type EvaluationSplit,
  type ModelType,
  type TextPriorPooling,
  type TextPriorSettings,
} from '../trainer';
import type { AppConfig } from './config';
import { loadSource, type DataSource } from './data';
import { openTrainingSink } from './sink';

/** The text prior an evaluation fuses in: the one tuned with the checkpoint, or given settings. */
export type EvaluationPrior =
  | { readonly kind: 'none' }
  | { readonly kind: 'tuned' }
  | { readonly kind: 'weight'; readonly weight: number; readonly lastItems?: number; readonly pooling?: TextPriorPooling };

export interface EvaluateJobOptions {
  readonly config: AppConfig;
  /** Checkpoint artifact id (in the config's store) or directory. */
  readonly checkpoint: string;
  readonly source: DataSource;
  readonly split: EvaluationSplit;
  readonly prior: EvaluationPrior;
  /** Overrides `trainer.eval.excludeHistory` when given. */
  readonly excludeHistory?: boolean;
  /** Write the evaluation rows to ClickHouse. */
  readonly writeRows: boolean;
  /** Receives `trainer.progress` (phase `evaluate`). */
  readonly instrumentation?: Instrumentation;
}

export interface EvaluateJobResult {
  readonly checkpointId: string;
  readonly modelType: ModelType;
  readonly dataset: string;
  readonly split: EvaluationSplit;
  readonly result: EvaluationResult;
  /** The text prior fused in, if any. */
  readonly prior?: TextPriorSettings;
}

/** The one setting a list-valued config key gives when the flag does not: its only entry, else an error. */
function single<T>(values: readonly T[], key: string, flag: string): T {
  if (values.length !== 1) throw new ConfigError(`${key} lists ${values.length} values (${values.join(', ')}); evaluation uses one: give ${flag}`, { context: { field: key } });
  return values[0] as T;
}

/**
 * The prior's settings: the tuned ones for `tuned`; for a weight, the given query length and
 * pooling, else the tuned ones, else `trainer.eval.textPrior`'s (one value each).
 */
export function priorSettings(prior: EvaluationPrior, tuned: TextPriorSettings | undefined, evalConfig: EvalConfig, checkpoint: string): TextPriorSettings | undefined {
  if (prior.kind === 'none') return undefined;
  if (prior.kind === 'tuned') {
    if (!tuned) throw new ConfigError(`--text-prior tuned: checkpoint ${checkpoint} was saved without a tuned text prior (train with --text-prior)`);
    return tuned;
  }
  return {
    weight: prior.weight,
    lastItems: prior.lastItems ?? tuned?.lastItems ?? single(evalConfig.textPrior.lastItems, 'trainer.eval.textPrior.lastItems', '--text-prior-last'),
    pooling: prior.pooling ?? tuned?.pooling ?? single(evalConfig.textPrior.pooling, 'trainer.eval.textPrior.pooling', '--text-prior-pooling'),
  };
}

/**
 * The evaluation job: a saved checkpoint ranked against every item for each user of a split
 * (leave-one-out, full ranking) with the cut-offs, batch size and history rule of
 * `trainer.eval`, with or without a text prior; the rows go to ClickHouse.
 */
export async function runEvaluateJob(options: EvaluateJobOptions): Promise<EvaluateJobResult> {
  const { config, instrumentation } = options;
  const evalConfig = config.trainer.eval;
  await initTf();
  const store = new ArtifactStore(config.artifacts.dir);
  // The side information and id mapping the checkpoint was trained with, from its inputs.
  const { artifact, sideInfo, itemIds: trainedIds, text } = await checkpointInputs(store, options.checkpoint);
  const dataset = await loadSource(config, options.source);
  const itemIds = trainedIds ?? itemIdMappingFromList(dataset.items.map((i) => i.itemId));
  const { model, settings } = await loadCheckpoint(store, artifact.dir, { itemCount: itemIds.itemCount, ...(sideInfo ? { sideInfo } : {}) });
  let prior: TextPrior | undefined;
  const sink = await openTrainingSink(config, options.writeRows);
  try {
    const chosen = priorSettings(options.prior, settings.textPrior, evalConfig, artifact.id);
    if (chosen && !text) throw new ConfigError(`--text-prior: checkpoint ${artifact.id} names no text embeddings; the text prior needs them`);
    prior = chosen && text ? new TextPrior(text, chosen) : undefined;
    const data = leaveOneOutSplit(dataset, itemIds);
    const examples = options.split === 'valid' ? data.valid : data.test;
    const excludeHistory = options.excludeHistory ?? evalConfig.excludeHistory;
    const result = await evaluateFullRanking(model, examples, settings.model.maxHistoryLength, {
      ks: evalConfig.ks,
      excludeHistory,
      batchSize: evalConfig.batchSize,
      ...(prior ? { textPrior: prior } : {}),
      ...(instrumentation
        ? { onBatch: (done: number, total: number) => instrumentation.emit('trainer.progress', { phase: 'evaluate', epoch: settings.epoch, epochs: settings.epoch + 1, step: done, steps: total }) }
        : {}),
    });
    await sink.observer?.evaluated(
      evaluationRows(
        {
          runId: settings.runId,
          modelVersion: artifact.id,
          split: options.split,
          usersEvaluated: result.users,
          excludeHistory,
          ...(chosen ? { textPrior: chosen } : {}),
          epoch: settings.epoch,
          evaluatedAt: new Date(),
        },
        result.metrics,
      ),
    );
    return { checkpointId: artifact.id, modelType: settings.modelType, dataset: data.name, split: options.split, result, ...(chosen ? { prior: chosen } : {}) };
  } finally {
    prior?.dispose();
    model.dispose();
    await sink.close();
  }
}
