import { z } from 'zod';
import { FeaturesConfig } from '../features';
import { QuantizerSettings } from '../quantizer';
import { StreamrecConfig } from '../schemas/config';
import { ServingConfig } from '../schemas/serving';
import { loadConfig, mergeConfig } from '../schemas/loadConfig';
import { EvalConfig, MicroEpochConfig, TrainConfig } from '../trainer';

/**
 * The configuration of the whole application: every stage's schema composed, strict, with
 * defaults. Jobs, serving and the live loop take it (or the parts they need); the CLI builds it
 * from its sources with {@link loadAppConfig}.
 */

/**
 * The trainer's section. `train` and `eval` are checked here; `model` is checked once the model
 * type is known (its keys depend on it: `model.type`, else `--model`, else CCFRec).
 */
export const TrainerSection = z
  .strictObject({
    model: z
      .record(z.string(), z.unknown())
      .default({})
      .describe('Model settings (trainer/config.ts: CcfrecConfig or SasrecConfig); `type` picks the model (default ccfrec, `--model` overrides).'),
    train: TrainConfig.prefault({}).describe('Optimisation and early stopping (trainer/config.ts).'),
    eval: EvalConfig.prefault({}).describe('Full-ranking evaluation (trainer/config.ts); `streamrec eval` honours it too.'),
  })
  .describe('Trainer settings: model, train, eval.');
export type TrainerSection = z.infer<typeof TrainerSection>;

export const ModelRegistryConfig = z
  .strictObject({
    url: z
      .string()
      .regex(/^(dir:.+|memory:)$/, 'expected dir:<directory> or memory:')
      .default('dir:.streamrec/model-registry')
      .describe('Where the published (live) model version is kept: `dir:<directory>` (shared by every process on the host) or `memory:` (this process only).'),
    announce: z
      .boolean()
      .default(false)
      .describe(
        'Announce each publication on the Kafka topic ingest.topics.models (brokers: kafka.brokers), and have servers follow it: a server swaps as soon as a version is published instead of at its next registry poll (serving.reloadPollMs), which stays as the fallback.',
      ),
  })
  .describe('The model registry: which checkpoint is live, with the evaluation that justified publishing it.');
export type ModelRegistryConfig = z.infer<typeof ModelRegistryConfig>;


export const LiveRebuildConfig = z
  .strictObject({
    enabled: z.boolean().default(true).describe('Whether the live trainer starts full rebuilds at all (on the schedule or on drift).'),
    everySeconds: z
      .number()
      .min(0)
      .default(86_400)
      .describe(
        "A full rebuild once the live lineage's codebooks are this old (their rebuild's time; a SASRec lineage: since the trainer started, or since its last rebuild). 0: no schedule, drift only.",
      ),
    minNewItems: z.number().int().min(1).default(50).describe('Drift is judged once at least this many items were coded with the codebooks since they were fitted.'),
    relMseRatio: z
      .number()
      .positive()
      .default(1.5)
      .describe("Drift: the new items' relative reconstruction error over that of the items the codebooks were fitted on (their rebuild's) above this."),
    newItemShare: z
      .number()
      .gt(0)
      .max(1)
      .default(0.3)
      .describe('Drift: the share of the catalog coded with codebooks that were fitted without it above this.'),
    collisionIncrease: z
      .number()
      .min(0)
      .default(0.05)
      .describe("Drift: the semantic-ID collision rate (share of items sharing their codes with another) risen above the rebuild's by more than this."),
    epochs: z.number().int().min(1).default(3).describe("Epochs of the candidate trained from the archive (the bootstrap's settings: jobs/bootstrap.ts's firstModelTrainer)."),
    gateExamples: z
      .number()
      .int()
      .min(1)
      .default(500)
      .describe('Examples both models are scored on (prequentially, on the same windows, neither having trained on them) before the candidate is published or dropped.'),
    gateMargin: z
      .number()
      .min(-1)
      .max(1)
      .default(0)
      .describe('How far (absolute) below the live model the candidate may be on micro.gateMetric and still replace it (negative: how far above it must be).'),
    gateTimeoutSeconds: z
      .number()
      .positive()
      .default(3_600)
      .describe('A candidate still short of gateExamples this long after it was trained is refused (a stream of new users alone gives no examples to score it on).'),
    retrySeconds: z.number().min(0).default(3_600).describe('After a candidate was refused or failed, how long before the next rebuild may start.'),
  })
  .describe(
    'Full rebuilds in the live loop: on the schedule or when new items drift from the codebooks, the trainer rebuilds the semantic IDs from the archived catalog and trains a fresh model from the archive in the background (micro-epochs go on), ' +
      'catches it up to the live stream position, scores both models on the next windows and publishes the candidate only if it is not worse by more than gateMargin. Every rebuild is a live_rebuilds row.',
  );
export type LiveRebuildConfig = z.infer<typeof LiveRebuildConfig>;

export const LiveTrainerConfig = z
  .strictObject({
    intervalSeconds: z.number().positive().default(15).describe('How often the trainer looks for new interactions in the archive.'),
    wakeEvents: z
      .number()
      .int()
      .min(0)
      .default(5000)
      .describe(
        'Look before intervalSeconds is up once this many interactions are archived past the stream position (counted every pollSeconds while waiting; never fewer than minEvents): a burst is trained on at once instead of at the next interval. 0: the interval alone.',
      ),
    pollSeconds: z
      .number()
      .positive()
      .default(2)
      .describe(
        'How often a waiting trainer counts what is archived past its stream position (for wakeEvents; a count reads the archive\'s topic, partition and offset columns) and calls its heartbeat.',
      ),
    maxFailures: z
      .number()
      .int()
      .min(0)
      .default(5)
      .describe(
        'Looks in a row that may fail (ClickHouse or the registry away, a checkpoint write failing) before the trainer gives up and throws: after each, it waits (pollSeconds, doubling up to 60 s) and continues the registry\'s live version from its checkpoint, as a restart would. 0: the first failure throws.',
      ),
    minEvents: z.number().int().min(1).default(1).describe('Fewer new interactions than this wait for the next look.'),
    maxEvents: z.number().int().min(1).default(20_000).describe('Most interactions in one micro-epoch; a backlog is worked off in several.'),
    micro: MicroEpochConfig.prefault({}).describe('Micro-epoch fine-tuning and its gate (trainer/incremental.ts).'),
    rebuild: LiveRebuildConfig.prefault({}),
    niceness: z
      .number()
      .int()
      .min(0)
      .max(19)
      .default(10)
      .describe(
        'The nice value (Linux) of the trainer\'s thread in `streamrec run` and of the TensorFlow / ONNX Runtime threads it starts: training then yields the cores to the threads that ingest and serve, so the history a request sees stays fresh while a micro-epoch or rebuild trains. 0 leaves the priority as it is.',
      ),
  })
  // A look reads at most maxEvents and waits for minEvents: minEvents above it would never be met.
  .refine((c) => c.minEvents <= c.maxEvents, { path: ['minEvents'], error: (issue) => `minEvents must be at most maxEvents (${(issue.input as { maxEvents: number }).maxEvents}), got ${(issue.input as { minEvents: number }).minEvents}` })
  .describe(
    'The live loop\'s trainer (`streamrec trainer`): every intervalSeconds, or as soon as wakeEvents new ones are archived, it reads the interactions archived since its stream position, runs a micro-epoch on the live model and publishes it when the gate passes. ' +
      'With the defaults on 2 cores a model is at most about a minute behind the archive.',
  );
export type LiveTrainerConfig = z.infer<typeof LiveTrainerConfig>;

export const AppConfig = StreamrecConfig.extend({
  features: FeaturesConfig.default(FeaturesConfig.parse({})),
  quantizer: QuantizerSettings.default(QuantizerSettings.parse({})),
  trainer: TrainerSection.prefault({}),
  modelRegistry: ModelRegistryConfig.prefault({}),
  serving: ServingConfig.prefault({}),
  live: LiveTrainerConfig.prefault({}),
}).describe('All settings of streamrec.');
export type AppConfig = z.infer<typeof AppConfig>;

export interface AppConfigSources {
  /** A JSON config file. */
  readonly file?: string;
  /** Where `STREAMREC__*` variables are read from (default: none). */
  readonly env?: NodeJS.ProcessEnv;
  /** Values from the command line, nested (`{ ingest: { groupId: 'x' } }`). */
  readonly overrides?: Record<string, unknown>;
}

/** The application config: defaults < `file` < `STREAMREC__*` environment < `overrides`. */
export function loadAppConfig(sources: AppConfigSources = {}): AppConfig {
  return loadConfig(AppConfig, {
    ...(sources.file ? { file: sources.file } : {}),
    ...(sources.env ? { env: sources.env } : {}),
    overrides: mergeConfig({}, sources.overrides ?? {}),
  });
}

/** `base` with `overrides` merged in and checked again (flags that beat every other source). */
export function withOverrides(base: AppConfig, overrides: Record<string, unknown>): AppConfig {
  return AppConfig.parse(mergeConfig(base as unknown as Record<string, unknown>, overrides));
}
