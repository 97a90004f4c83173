import { ArtifactError, ConfigError } from '../errors';
import { ArtifactStore } from '../infra/artifacts';
import type { ModelRegistry } from '../infra/registry';
import type { Instrumentation } from '../instrumentation';
import type { TrainerConfig } from '../trainer';
import type { AppConfig } from './config';
import { publishCheckpoint, type PublishJobResult } from './publish';
import { runRebuildJob, type RebuildJobResult } from './rebuild';
import { UNCOVERED_ITEMS, runTrainJob, type TrainJobOptions, type TrainJobResult } from './train';
import { trainerConfigFromFlags } from './trainerFlags';

/**
 * The trainer settings of a first model sized for minutes on 2 cores (the demo's and `streamrec
 * run --bootstrap`'s): a short warm-up (the default's 500 steps are several epochs of a small
 * archive), the last 10 items of each history, the text prior tuned on validation.
 */
export function firstModelTrainer(config: AppConfig, model: 'ccfrec' | 'sasrec', epochs: number): TrainerConfig {
  return trainerConfigFromFlags(config.trainer, model, {
    epochs: String(epochs),
    warmup: '50',
    'max-history': '10',
    'text-prior': '0.25,0.5,1',
    'text-prior-last': '1,3',
  });
}

/**
 * The training job on the archive, which keeps growing while ingest runs: when catalog items
 * archived after the semantic IDs were made are not covered, `codeNewItems` codes them with the
 * existing codebooks (no refit) and training tries again (up to twice; without it, the error stands).
 */
export async function trainCodingNewItems(options: TrainJobOptions, codeNewItems: (() => Promise<unknown>) | undefined): Promise<TrainJobResult> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await runTrainJob(options);
    } catch (error) {
      if (attempt >= 3 || !codeNewItems || !(error instanceof ArtifactError && error.context.reason === UNCOVERED_ITEMS)) throw error;
      await codeNewItems();
    }
  }
}

export interface BootstrapResult {
  readonly rebuild: RebuildJobResult;
  readonly train: TrainJobResult;
  readonly publication: Extract<PublishJobResult, { published: true }>;
}

/**
 * A live loop's first model from what is archived: semantic IDs rebuilt from the archived
 * catalog, a model trained and evaluated on the archive ({@link firstModelTrainer}; rows to
 * ClickHouse), published as the live version. Catalog items archived after the rebuild are coded
 * with its codebooks before training again (up to twice). Fails when there is nothing to train on or the
 * registry refuses the publication (someone else published first: the caller continues that one).
 */
export async function bootstrapModel(
  config: AppConfig,
  registry: ModelRegistry,
  options: {
    readonly model: 'ccfrec' | 'sasrec';
    readonly epochs: number;
    readonly instrumentation?: Instrumentation;
    /** Runs before the registry names the model live (serving's prepare: servers then swap without exporting or computing). */
    readonly prepare?: (checkpointId: string) => Promise<unknown>;
  },
): Promise<BootstrapResult> {
  const extra = options.instrumentation ? { instrumentation: options.instrumentation } : {};
  const rebuild = await runRebuildJob(config, { source: { kind: 'archive' }, ...extra });
  const train = await trainCodingNewItems(
    { config, trainer: firstModelTrainer(config, options.model, options.epochs), source: { kind: 'archive' }, writeRows: true, ...extra },
    () => runRebuildJob(config, { source: { kind: 'archive' }, newItemsOnly: true, ...extra }),
  );
  if (!train.checkpointId) throw new ConfigError('bootstrap: the training run wrote no checkpoint');
  const publication = await publishCheckpoint({ registry, store: new ArtifactStore(config.artifacts.dir), checkpoint: train.checkpointId, reason: 'bootstrap: the first model of the live loop', ...(options.prepare ? { prepare: options.prepare } : {}) });
  if (!publication.published) throw new ConfigError(`bootstrap: not published: ${publication.reason}`);
  return { rebuild, train, publication };
}
