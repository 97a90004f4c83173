/**
 * jobs/: the stage chains as library functions, each taking a typed config and stores and
 * returning typed results, with progress as instrumentation events and nothing on stdout:
 * rebuild, train, evaluate, fine-tune, publish, and loading a checkpoint as a servable model.
 * The CLI, the benchmarks, the demo, serving and the live loop call these.
 */
export { AppConfig, LiveTrainerConfig, ModelRegistryConfig, TrainerSection, loadAppConfig, withOverrides, type AppConfigSources } from './config';
export { TRAINER_FLAGS, camelFlag, modelTypeOf, trainerConfigFromFlags, trainerFlagNames, type TrainerFlag } from './trainerFlags';
export { dataSourceOf, loadSource, sourceFlag, type DataSource } from './data';
export { combineObservers, openTrainingSink, type TrainingSink } from './sink';
export { runRebuildJob, type RebuildJobOptions, type RebuildJobResult } from './rebuild';
export { runTrainJob, type TrainJobOptions, type TrainJobResult } from './train';
export { priorSettings, runEvaluateJob, type EvaluateJobOptions, type EvaluateJobResult, type EvaluationPrior } from './evaluate';
export { denseHistoriesBatch, denseIdsOf, historiesBatch, knownDenseIds, loadServableModel, type LoadServableOptions, type ServableCatalog, type ServableModel } from './servable';
export { runFineTuneJob, type FineTuneJobOptions, type FineTuneJobResult } from './finetune';
export { publishCheckpoint, storedEvaluation, type PublishGate, type PublishJobOptions, type PublishJobResult } from './publish';
export { openRegistry } from './registry';
export { runIncrementalJob, summarizeIncremental, type IncrementalJobOptions, type IncrementalSummary } from './incremental';
export { LiveTrainer, driftReasons, type LiveStep, type LiveTrainerOptions } from './liveTrainer';
export { TrainerMetrics, microEpochOutcome, type MicroEpochOutcome } from './trainerMetrics';
export { bootstrapModel, firstModelTrainer, type BootstrapResult } from './bootstrap';
