/**
 * trainer/: CCFRec and the SASRec baseline in TF.js, their training loop (AdamW + warm-up,
 * early stopping), full-ranking evaluation and checkpoints. The public surface of the stage.
 */
export {
  CcfrecConfig,
  EvalConfig,
  METRIC_KS,
  ModelConfig,
  SasrecConfig,
  TEXT_PRIOR_POOLINGS,
  TextPriorConfig,
  TrainConfig,
  TrainerConfig,
  parseModelConfig,
  parseTrainerConfig,
  type ModelType,
  type TextPriorPooling,
  type TrainerConfigInput,
} from './config';
export {
  globalCodeIds,
  hashTypedArray,
  itemIdMappingFromList,
  sideInfoFingerprint,
  toDenseIds,
  validateSideInfo,
  type ItemIdMapping,
  type ItemSideInfo,
  type SemanticIdTable,
  type SideInfoArtifactIds,
  type SideInfoFingerprint,
  type TextFieldTable,
} from './sideInfo';
export {
  batchIndices,
  dataWatermarkOf,
  examplesFrom,
  historyOf,
  leaveOneOutSplit,
  makeBatch,
  type LeaveOneOutData,
  type SequenceBatch,
  type SequenceExamples,
} from './data';
export { MASK_TOKEN_ID, maskCodes, type MaskedCodes } from './masking';
export { sampleNegatives } from './sampler';
export { CcfrecModel, SasrecModel, checkRows, createModel, hostItemTable, type LossResult, type ModelInputs, type SequentialRecommender } from './models';
export type { NamedWeight, WeightValues } from './layers/params';
export { l2Normalize } from './layers/dense';
export { MASKED_SCORE } from './layers/transformer';
export { AdamW, adamWSettings, learningRateAt, type AdamWSettings, type OptimizerState, type ScheduleSettings } from './optimizer';
export { TrainingError, trainStep, type StepOutcome } from './trainStep';
export { fitModel, type FitOptions, type FitResult } from './trainLoop';
export { METRIC_NAMES, MetricAccumulator, hitAtK, metricKey, mrrAtK, ndcgAtK, rankOfTarget, recallAtK, type MetricName } from './metrics';
export { evaluateFullRanking, evaluateFusedRankings, rankTargets, tuneTextPrior, type FusedScoring, type TextPriorTuning, type EvaluationOptions, type EvaluationResult, type Exclusions } from './evaluate';
export {
  CHECKPOINT_FORMAT,
  loadCheckpoint,
  saveCheckpoint,
  type CheckpointMeta,
  type CheckpointSettings,
  type DataWatermark,
  type LoadCheckpointOptions,
  type LoadedCheckpoint,
  type TrainingState,
} from './checkpoint';
export { IncrementalTrainer, MicroEpochConfig, type IncrementalTrainerOptions, type MicroEpochResult, type StreamInteraction } from './incremental';
export {
  INCREMENTAL_METHODS,
  runIncrementalExperiment,
  type IncrementalExperimentOptions,
  type IncrementalExperimentResult,
  type IncrementalMethod,
  type IncrementalMethodSummary,
  type IncrementalWindowRow,
} from './incrementalExperiment';
export {
  InMemoryObserver,
  evaluationRows,
  type EpochRow,
  type EvaluationRow,
  type EvaluationSplit,
  type ProgressCallback,
  type RunEnd,
  type RunInfo,
  type RunStatus,
  type TrainingObserver,
  type TrainingProgress,
} from './observer';
export { trainAndEvaluate, type TrainAndEvaluateOptions, type TrainAndEvaluateResult } from './experiment';
export { measureTrainingThroughput, type ThroughputOptions, type ThroughputResult } from './throughput';
export {
  catalogDrift,
  checkpointInputs,
  latestGrownCatalog,
  loadArtifactSideInfo,
  loadArtifactTextTables,
  itemIdsOfArtifact,
  type ArtifactSideInfo,
  type ArtifactTextTables,
  type CatalogDrift,
  type CheckpointInputs,
} from './artifactSideInfo';
export { TextPrior, parseNumberList, parsePoolingList, textPriorTable, textPriorTableInSlices, type ItemTextTables, type TextPriorTable, type TextPriorSettings } from './textPrior';
export { ClickHouseTrainingObserver } from './clickhouseObserver';
export { evaluateFixedScores, popularityScores } from './popularity';
