/**
 * features/: item catalog -> cleaned texts -> text encoders -> PCA whitening -> artifacts.
 * The public surface of the stage; other folders import only from here.
 */

export { Catalog, itemFieldText } from './catalog';
export { CLEAN_TEXT_VERSION, cleanText, removeEmoji, stripTags } from './cleanText';
export { FeaturesConfig, GloveSifConfig, OnnxConfig, TfidfLsaConfig } from './config';
export {
  ENCODER_NAMES,
  type EncodeOptions,
  type EncoderName,
  type EncoderState,
  type FittedTextEncoder,
  type TextEncoder,
  type TextEncoderSpec,
} from './encoder';
export { createTextEncoderSpec, type CreateEncoderOptions, type EncoderConfig } from './encoders';
export { readItemEmbeddings, writeEmbeddingsArtifact, type ItemEmbeddings, type WriteEmbeddingsOptions } from './embeddings';
export { defaultCacheDir, ensureGloveCache, loadGloveTable, type GloveCacheInfo, type GloveSourceOptions, type GloveTable } from './glove';
export { gloveSifSpec, type GloveSifSettings } from './gloveSif';
export { decodeHtmlEntities } from './htmlEntities';
export {
  runFeaturesJob,
  runFeaturesJobFromConfig,
  type FeaturesJobOptions,
  type FeaturesJobResult,
  type FeaturesProgress,
} from './job';
export { orthonormalizeColumns, symmetricEigen, type SymmetricEigen } from './eigen';
/** The matrix type of the stage's API; it and its helpers live in infra/matrix.ts. */
export type { Matrix } from '../infra/matrix';
export { onnxSpec, type OnnxSettings } from './onnxEncoder';
export { applyPca, explainedVarianceRatio, fitPca, type PcaModel, type PcaOptions } from './pca';
export {
  loadTextProjection,
  TextProjection,
  writeProjectionArtifact,
  type FieldProjection,
  type WriteProjectionOptions,
} from './projection';
export { ItemRegistry } from './registry';
export { tfidfLsaSpec, type TfidfLsaSettings } from './tfidfLsa';
