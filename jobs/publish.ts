import { ArtifactError, RegistryError } from '../errors';
import type { ArtifactStore } from '../infra/artifacts';
import type { ModelRegistry, PublishEvaluation, PublishedModel } from '../infra/registry';
import type { Instrumentation } from '../instrumentation';
import { openCheckpointArtifact } from '../trainer/checkpoint';

/**
 * A publication gate: the candidate's `metric` on its evaluation must reach the live version's by
 * `minGain` (which may be negative: a tolerance), on the same split; with nothing live, anything passes.
 */
export interface PublishGate {
  readonly metric: string;
  readonly minGain: number;
}

export interface PublishJobOptions {
  readonly registry: ModelRegistry;
  readonly store: ArtifactStore;
  /** Checkpoint artifact id (or directory) in `store`. */
  readonly checkpoint: string;
  /**
   * The evaluation that justifies it; default: the test metrics stored with the checkpoint when it
   * was trained (those of its tuned text prior when it has one, since serving ranks with it).
   */
  readonly evaluation?: PublishEvaluation;
  readonly gate?: PublishGate;
  readonly reason?: string;
  /**
   * The live version this publication continues (0: none). A publisher that continues a model
   * (the live trainer) names it, so that a version published by someone else meanwhile (an
   * operator's rollback, another trainer) makes this publication fail with a RegistryError
   * instead of replacing it. Default: whatever is live when the job reads the registry.
   */
  readonly expectedLiveVersion?: number;
  /**
   * Runs once the gate has passed, before the registry names the checkpoint live (its id given):
   * serving's `prepareServing`, so that servers swap to it without exporting or building
   * anything while they answer. A failure stops the publication.
   */
  readonly prepare?: (checkpointId: string) => Promise<unknown>;
  /** Receives `model.published`. */
  readonly instrumentation?: Instrumentation;
}

export type PublishJobResult =
  | { readonly published: true; readonly model: PublishedModel; readonly live?: PublishedModel }
  | { readonly published: false; readonly reason: string; readonly live: PublishedModel };

const finiteMetrics = (value: unknown): Record<string, number> | undefined => {
  if (value === null || typeof value !== 'object') return undefined;
  const entries = Object.entries(value as Record<string, unknown>).filter((e): e is [string, number] => typeof e[1] === 'number' && Number.isFinite(e[1]));
  return entries.length > 0 ? Object.fromEntries(entries) : undefined;
};

/** The test evaluation a training run stored in the checkpoint's manifest (trainer/experiment.ts). */
export async function storedEvaluation(store: ArtifactStore, checkpoint: string): Promise<PublishEvaluation> {
  const artifact = await openCheckpointArtifact(store, checkpoint);
  const metrics = artifact.manifest.metrics ?? {};
  const watermark = (artifact.manifest.settings.dataWatermark ?? {}) as { dataset?: unknown };
  const dataset = typeof watermark.dataset === 'string' ? { dataset: watermark.dataset } : {};
  const users = typeof metrics.usersTest === 'number' ? metrics.usersTest : undefined;
  const prior = metrics.textPrior as { weight?: number; lastItems?: number; pooling?: 'max' | 'mean'; test?: unknown } | undefined;
  const priorTest = finiteMetrics(prior?.test);
  if (prior && priorTest && users !== undefined && prior.weight !== undefined && prior.lastItems !== undefined && prior.pooling !== undefined) {
    return { split: 'test', metrics: priorTest, users, ...dataset, textPrior: { weight: prior.weight, lastItems: prior.lastItems, pooling: prior.pooling } };
  }
  const test = finiteMetrics(metrics.test);
  if (!test || users === undefined) {
    throw new ArtifactError(`checkpoint ${artifact.id} stores no test metrics (metrics.test, metrics.usersTest): evaluate it and pass the evaluation`, {
      context: { path: artifact.dir },
    });
  }
  return { split: 'test', metrics: test, users, ...dataset };
}

/**
 * The publish job: makes a checkpoint the live model version in the registry, with the
 * evaluation that justified it, unless the gate says it is not good enough against the live one.
 * The registry call names the live version the decision was made against, so a publisher that
 * lost a race fails instead of overwriting a newer model.
 */
export async function publishCheckpoint(options: PublishJobOptions): Promise<PublishJobResult> {
  const { registry, store, gate } = options;
  const artifact = await openCheckpointArtifact(store, options.checkpoint);
  const evaluation = options.evaluation ?? (await storedEvaluation(store, artifact.id));
  const live = await registry.live();
  const expectedLiveVersion = options.expectedLiveVersion ?? live?.version ?? 0;
  if (expectedLiveVersion !== (live?.version ?? 0)) {
    // Checked here too so that a stale publisher does not prepare serving artifacts for nothing.
    throw new RegistryError(
      `publish of ${artifact.id}: it continues live version ${expectedLiveVersion}, but version ${live?.version ?? 0} is live (another publisher was first)`,
    );
  }
  if (gate && live) {
    const candidate = evaluation.metrics[gate.metric];
    const current = live.evaluation.split === evaluation.split ? live.evaluation.metrics[gate.metric] : undefined;
    if (candidate === undefined) {
      throw new ArtifactError(`publish gate: the evaluation of ${artifact.id} has no ${gate.metric} (has ${Object.keys(evaluation.metrics).join(', ')})`);
    }
    if (current !== undefined && candidate < current + gate.minGain) {
      return {
        published: false,
        live,
        reason: `${gate.metric} ${candidate.toFixed(4)} on ${evaluation.split} does not reach live version ${live.version}'s ${current.toFixed(4)} ${gate.minGain >= 0 ? '+' : '-'} ${Math.abs(gate.minGain)}`,
      };
    }
  }
  await options.prepare?.(artifact.id);
  const model = await registry.publish({
    checkpointId: artifact.id,
    evaluation,
    expectedLiveVersion,
    ...(options.reason !== undefined ? { reason: options.reason } : {}),
  });
  options.instrumentation?.emit('model.published', { version: model.version, checkpointId: model.checkpointId, modelType: model.modelType, split: evaluation.split, metrics: evaluation.metrics });
  return { published: true, model, ...(live ? { live } : {}) };
}
