export { FreshHistories, type FreshHistoriesOptions, type FreshHistoriesStats } from './histories';
export {
  AnnConfig,
  AnnIndexCache,
  AnnManifest,
  ExactIndex,
  HnswIndex,
  HnswSettings,
  chooseKind,
  clusteredUnitVectors,
  createAnnIndex,
  loadAnnIndex,
  parseAnnConfig,
  type AnnConfigInput,
  type AnnExclusion,
  type AnnHits,
  type AnnIndex,
  type AnnKind,
  type AnnSaveOptions,
  type AnnSearchOptions,
  type ExactIndexOptions,
  type ExactScorer,
} from './ann';
export { LocalHistories, MemoryHistories, type HistoryView } from './historyView';
export { PopularItems } from './popular';
export { ItemTableCache } from './itemTableCache';
export { ModelVersion, type ModelDescription, type ModelVersionOptions, type ScoredItem } from './modelVersion';
export { ModelHolder, type SwapOutcome } from './modelHolder';
export { ServingMetrics, type ServingSample } from './metrics';
export { ClusterMember, ServingCluster, WORKER_ENV, servingWorkerIndex, type ClusterLink, type ServingClusterOptions, type WorkerReload } from './cluster';
export { RequestError, buildServer, type ServerOptions } from './server';
export { apiSchemas, openApiDocument, type ApiSchemas } from './api';
export { modelVersionOptions, prepareServing, startServing, type HistorySourceChoice, type ServingRuntime } from './run';
export {
  DEFAULT_ROWS_PER_RUN,
  InferenceThread,
  OnnxEncoderSettings,
  OnnxUserEncoder,
  TfjsUserEncoder,
  USER_ENCODER_CHOICES,
  USER_ENCODER_KINDS,
  buildOnnxEncoder,
  checkEncoderBatch,
  compareUserEncoders,
  findOnnxEncoder,
  maxAbsDiff,
  openUserEncoder,
  readOnnxEncoder,
  writeOnnxEncoder,
  type EncoderComparison,
  type EncoderSource,
  type OnnxSessionOptions,
  type OpenUserEncoderOptions,
  type UserEncoder,
  type UserEncoderChoice,
  type UserEncoderKind,
} from './onnx';
