/**
 * quantizer/: semantic IDs. Matrix in, codes out: PQ, OPQ, RQ and balanced RQ-KMeans over one
 * item matrix (the caller decides what it holds: concatenated fields or a fused vector), the
 * semantic-ID table (item id -> digits, row 0 = padding), its quality metrics, and the
 * `codebooks` / `semantic_ids` artifacts with their manifests.
 *
 * Typical use:
 * ```ts
 * const build = await buildSemanticIds({ store, matrix, settings: { method: 'rqkmeans' }, rng: new Random(7), inputs, job: 'streamrec rebuild' });
 * // later, between rebuilds:
 * const next = await encodeNewItems({ store, semanticIds: build.semanticIds, vectors, inputs, job: 'streamrec ingest' });
 * ```
 * Other folders import only from this file.
 */
/** The matrix type of the stage's API; it and its helpers live in infra/matrix.ts. */
export type { Matrix } from '../infra/matrix';
export {
  KMeansSettings,
  QuantizerMethod,
  QuantizerSettings,
  type QuantizerSettingsInput,
  MAX_CODES_PER_LEVEL,
  parseQuantizerSettings,
} from './config';
export { kmeans, kmeansPlusPlus, type KMeansOptions, type KMeansResult } from './kmeans';
export { type Quantizer, type QuantizerKind, type TrainedQuantizer } from './quantizer';
export { ProductQuantizer, trainPq } from './pq';
export { OptimizedProductQuantizer, trainOpq } from './opq';
export { ResidualQuantizer, trainRq, trainRqKMeans } from './rq';
export { polarFactor, orthogonalityError, type PolarResult } from './rotation';
export {
  relativeSquaredError,
  codeUtilization,
  collisionStats,
  quantizationMetrics,
  type LevelUtilization,
  type CollisionStats,
  type QuantizationMetrics,
} from './metrics';
export { type SemanticIdTable, buildSemanticIdTable, appendToSemanticIdTable, tableCodes, semanticIdOf } from './semanticIds';
export {
  CodebooksArtifactSettings,
  SemanticIdsArtifactSettings,
  writeCodebooksArtifact,
  loadQuantizer,
  writeSemanticIdsArtifact,
  loadSemanticIdTable,
  type WriteCodebooksOptions,
  type WriteSemanticIdsOptions,
} from './artifacts';
export {
  trainQuantizer,
  matrixHash,
  buildSemanticIds,
  encodeNewItems,
  type BuildSemanticIdsOptions,
  type SemanticIdBuild,
  type EncodeNewItemsOptions,
  type NewItemsEncoding,
} from './pipeline';
export { SyntheticClustersSettings, syntheticClusters } from './synthetic';
