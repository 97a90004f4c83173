import { z } from 'zod';
import { RegistryError } from '../../errors';

/**
 * The model registry: which checkpoint is live (what serving loads), with the evaluation that
 * justified publishing it, and every earlier publication. Publishing is separate from writing a
 * checkpoint: the artifact store's LATEST says what was written last, the registry says what was
 * published. Implementations: {@link DirectoryModelRegistry} (a directory every process on the
 * host shares; the live pointer is replaced atomically) and {@link MemoryModelRegistry} (one
 * process). {@link openModelRegistry} picks one from a URL.
 */

/** The evaluation a publication rests on: one split's full-ranking metrics. */
export const PublishEvaluation = z
  .strictObject({
    split: z.enum(['valid', 'test', 'stream']).describe('Which split the metrics are from: valid or test of a training run, or stream (a micro-epoch\'s held-out recent events).'),
    metrics: z.record(z.string(), z.number().finite()).describe('Metric values keyed `recall@10`, `ndcg@10`, ...'),
    users: z.number().int().nonnegative().describe('Users evaluated.'),
    dataset: z.string().min(1).optional().describe('What the split was made from.'),
    textPrior: z
      .strictObject({ weight: z.number().finite().min(0), lastItems: z.number().int().min(1), pooling: z.enum(['max', 'mean']) })
      .optional()
      .describe('The text prior fused into the ranking that was evaluated; absent: the model alone.'),
  })
  .describe('The evaluation that justified a publication.');
export type PublishEvaluation = z.infer<typeof PublishEvaluation>;

/** One publication: a checkpoint made live. */
export const PublishedModel = z
  .strictObject({
    version: z.number().int().positive().describe('1, 2, ...: the order of publications in this registry.'),
    checkpointId: z.string().regex(/^checkpoint-[0-9a-f]{16}$/, 'expected checkpoint-<16 hex>').describe('The checkpoint artifact made live.'),
    modelType: z.enum(['ccfrec', 'sasrec']).describe('The model the checkpoint holds.'),
    publishedAt: z.iso.datetime().describe('When it was published (UTC).'),
    evaluation: PublishEvaluation,
    reason: z.string().max(2000).optional().describe('Why it was published (a person, or the gate that passed it).'),
    previousVersion: z.number().int().positive().optional().describe('The version that was live before (absent for the first).'),
  })
  .describe('A published model version.');
export type PublishedModel = z.infer<typeof PublishedModel>;

export interface PublishRequest {
  readonly checkpointId: string;
  readonly evaluation: PublishEvaluation;
  readonly reason?: string;
  /**
   * Publish only if this version is live now (0: only if nothing was ever published): a
   * publisher that decided against the live model fails instead of overwriting a newer one.
   */
  readonly expectedLiveVersion?: number;
}

/** Is a checkpoint there to be published, and which model does it hold? */
export type CheckpointLookup = (checkpointId: string) => Promise<{ readonly modelType: 'ccfrec' | 'sasrec' }>;

export interface ModelRegistry {
  /** Where it lives (`dir:<path>`, `memory:`). */
  readonly url: string;
  /**
   * Makes a checkpoint the live version and returns the new publication. Fails (RegistryError)
   * for a checkpoint the store does not hold, an invalid evaluation, or a stale
   * `expectedLiveVersion`; the live version is then unchanged.
   */
  publish(request: PublishRequest): Promise<PublishedModel>;
  /** The live version, or undefined before the first publication. */
  live(): Promise<PublishedModel | undefined>;
  /** Every publication, oldest first. */
  history(): Promise<PublishedModel[]>;
  /**
   * Calls `listener` with each new live version after this call (not the current one), in
   * increasing order, until the returned function is called or `signal` aborts. A registry shared
   * between processes is checked every `pollMs` (sooner where the filesystem notifies) and reports
   * the newest version it finds, so a version that was live for less than that may be skipped:
   * what a watcher wants is the model to serve now. Listener errors go to `onError` (default:
   * logged) and do not stop the watch.
   */
  watch(listener: (model: PublishedModel) => void, options?: WatchOptions): () => void;
}

export interface WatchOptions {
  readonly signal?: AbortSignal;
  /** How often a shared registry is checked for a new live version (ms). */
  readonly pollMs?: number;
  readonly onError?: (error: unknown) => void;
}

/** The next publication after `live`, checked: the request's evaluation, the version guard, the checkpoint. */
export async function nextPublication(
  request: PublishRequest,
  live: PublishedModel | undefined,
  lastVersion: number,
  lookup: CheckpointLookup,
  url: string,
): Promise<PublishedModel> {
  const liveVersion = live?.version ?? 0;
  if (request.expectedLiveVersion !== undefined && request.expectedLiveVersion !== liveVersion) {
    throw new RegistryError(
      `registry ${url}: publish of ${request.checkpointId} expected live version ${request.expectedLiveVersion}, but version ${liveVersion} is live (another publisher was first)`,
      { context: { path: url } },
    );
  }
  const evaluation = PublishEvaluation.safeParse(request.evaluation);
  if (!evaluation.success) {
    const issue = evaluation.error.issues[0];
    throw new RegistryError(`registry ${url}: publish of ${request.checkpointId}: evaluation.${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'invalid'}`, {
      context: { field: `evaluation.${issue?.path.join('.') ?? ''}` },
    });
  }
  let modelType: 'ccfrec' | 'sasrec';
  try {
    ({ modelType } = await lookup(request.checkpointId));
  } catch (cause) {
    throw new RegistryError(`registry ${url}: cannot publish ${JSON.stringify(request.checkpointId)}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
  const record = PublishedModel.safeParse({
    version: lastVersion + 1,
    checkpointId: request.checkpointId,
    modelType,
    publishedAt: new Date().toISOString(),
    evaluation: evaluation.data,
    ...(request.reason !== undefined ? { reason: request.reason } : {}),
    ...(live ? { previousVersion: live.version } : {}),
  });
  if (!record.success) {
    const issue = record.error.issues[0];
    throw new RegistryError(`registry ${url}: cannot publish ${JSON.stringify(request.checkpointId)}: ${issue?.path.join('.')}: ${issue?.message}`);
  }
  return record.data;
}
