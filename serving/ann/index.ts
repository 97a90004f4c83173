/** Candidate generation: the {@link AnnIndex} interface, its exact and HNSW implementations, settings and persistence. */
export type { AnnExclusion, AnnHits, AnnIndex, AnnKind, AnnSaveOptions, AnnSearchOptions } from './annIndex';
export { AnnConfig, HnswSettings, parseAnnConfig, type AnnConfigInput } from './config';
export { AnnIndexCache } from './cache';
export { chooseKind, createAnnIndex, loadAnnIndex } from './create';
export { ExactIndex, type ExactIndexOptions, type ExactScorer } from './exact';
export { HnswIndex } from './hnsw';
export { chooseHnswlib, hnswlib, missingCpuFeatures, probeHnswlib, type HnswlibBuild, type HnswlibBuildName, type HnswlibProbe } from './hnswlib';
export { AnnManifest } from './manifest';
export { clusteredUnitVectors } from './synthetic';
