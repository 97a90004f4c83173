import { ArtifactError } from '../errors';
import { sha256, type ArtifactStore, type LoadedArtifact } from '../infra/artifacts';
import { createLogger } from '../logging';
import type { Random } from '../random';
import type { ArtifactInput } from '../schemas/artifacts';
import { loadQuantizer, loadSemanticIdTable, writeCodebooksArtifact, writeSemanticIdsArtifact } from './artifacts';
import { parseQuantizerSettings, type QuantizerSettingsInput } from './config';
import type { Matrix } from '../infra/matrix';
import { quantizationMetrics, relativeSquaredError, type QuantizationMetrics } from './metrics';
import { trainOpq } from './opq';
import { trainPq } from './pq';
import type { Quantizer, TrainedQuantizer } from './quantizer';
import { trainRq, trainRqKMeans } from './rq';
import { appendToSemanticIdTable, buildSemanticIdTable, tableCodes, type SemanticIdTable } from './semanticIds';

/**
 * The two jobs of the quantizer stage: a full rebuild (fit codebooks, code every item, write a
 * new codebooks and semantic-ID version) and coding new items between rebuilds with the existing
 * codebooks (no refit; existing items keep their ids and codes).
 */

const log = createLogger('quantizer.pipeline');

/** Trains the quantizer that `settings.method` names. */
export async function trainQuantizer(x: Matrix, settings: QuantizerSettingsInput, rng: Random): Promise<TrainedQuantizer> {
  const s = parseQuantizerSettings(settings);
  switch (s.method) {
    case 'pq':
      return trainPq(x, s, rng);
    case 'opq':
      return trainOpq(x, s, rng);
    case 'rq':
      return trainRq(x, s, rng);
    case 'rqkmeans':
      return trainRqKMeans(x, s, rng);
  }
}

/** sha256 of a matrix's float32 bytes, for lineage. */
export function matrixHash(x: Matrix): string {
  return sha256(Buffer.from(x.data.buffer, x.data.byteOffset, x.data.byteLength));
}

export interface BuildSemanticIdsOptions {
  readonly store: ArtifactStore;
  /** Item vectors `[items, dims]`; row `r` is item id `r + 1`. */
  readonly matrix: Matrix;
  readonly settings: QuantizerSettingsInput;
  readonly rng: Random;
  /** Lineage of the matrix: the embeddings artifact, catalog snapshot and encoder hashes. */
  readonly inputs: ArtifactInput[];
  /** The producing job, e.g. `streamrec rebuild`. */
  readonly job: string;
  /** Add the disambiguation digit so that every item's ID is unique. */
  readonly disambiguate?: boolean;
}

export interface SemanticIdBuild {
  readonly quantizer: Quantizer;
  readonly table: SemanticIdTable;
  /** Metrics of the table's codes (before disambiguation), also written in both manifests. */
  readonly metrics: QuantizationMetrics;
  readonly codebooks: LoadedArtifact;
  readonly semanticIds: LoadedArtifact;
  readonly trainSeconds: number;
}

/** Full rebuild: fits the quantizer on every item and writes new codebooks and semantic-ID versions. */
export async function buildSemanticIds(options: BuildSemanticIdsOptions): Promise<SemanticIdBuild> {
  const { matrix: x, store, job } = options;
  const settings = parseQuantizerSettings(options.settings);
  const started = performance.now();
  const trained = await trainQuantizer(x, settings, options.rng);
  const trainSeconds = (performance.now() - started) / 1000;
  const { quantizer, codes } = trained;
  const metrics = quantizationMetrics(codes, x.rows, quantizer.levels, quantizer.codesPerLevel, {
    x,
    recon: quantizer.decode(codes, x.rows),
  });
  const inputs: ArtifactInput[] = [
    { role: 'matrix', hash: matrixHash(x), description: `float32 [${x.rows}, ${x.cols}] item vectors; row r is item id r + 1` },
    ...options.inputs,
  ];
  const codebooks = await writeCodebooksArtifact(store, quantizer, {
    job,
    inputs,
    training: settings,
    trainingRows: x.rows,
    seed: options.rng.seed,
    metrics,
  });
  const table = buildSemanticIdTable(codes, x.rows, quantizer.levels, quantizer.codesPerLevel, {
    disambiguate: options.disambiguate ?? false,
  });
  const semanticIds = await writeSemanticIdsArtifact(store, table, { job, codebooks, inputs, rebuildItems: x.rows, metrics });
  log.info(
    {
      codebooks: codebooks.id,
      semanticIds: semanticIds.id,
      items: x.rows,
      relMse: metrics.relMse,
      collisionRate: metrics.collisionRate,
      trainSeconds,
    },
    'semantic ids rebuilt',
  );
  return { quantizer, table, metrics, codebooks, semanticIds, trainSeconds };
}

export interface EncodeNewItemsOptions {
  readonly store: ArtifactStore;
  /** The current semantic-ID table; its codebooks are loaded from the same store. */
  readonly semanticIds: LoadedArtifact;
  /** Vectors of the new items `[m, dims]`; they get ids `items + 1 .. items + m` in row order. */
  readonly vectors: Matrix;
  /** Lineage of the new vectors. */
  readonly inputs: ArtifactInput[];
  readonly job: string;
}

export interface NewItemsEncoding {
  readonly table: SemanticIdTable;
  readonly semanticIds: LoadedArtifact;
  /** Id of the first new item. */
  readonly firstItemId: number;
  /** Codes of the new items `[m, levels]`. */
  readonly codes: Uint16Array;
  readonly metrics: QuantizationMetrics & { readonly newItems: number; readonly newItemsRelMse?: number };
}

/**
 * Codes new items with the codebooks of the current table (nearest centroid at every level, no
 * refit) and writes the extended table as a new `semantic_ids` version: existing items keep their
 * ids and codes, new items get the next ids.
 */
export async function encodeNewItems(options: EncodeNewItemsOptions): Promise<NewItemsEncoding> {
  const { store, vectors } = options;
  const current = await loadSemanticIdTable(options.semanticIds);
  const codebooks = await store.open(current.settings.codebooksId);
  const quantizer = await loadQuantizer(codebooks);
  if (quantizer.levels !== current.table.levels || quantizer.codesPerLevel !== current.table.codesPerLevel) {
    throw new ArtifactError(
      `${options.semanticIds.id}: table has ${current.table.levels} x ${current.table.codesPerLevel} codes, ` +
        `its codebooks ${codebooks.id} ${quantizer.levels} x ${quantizer.codesPerLevel}`,
    );
  }
  const codes = quantizer.encode(vectors);
  const table = appendToSemanticIdTable(current.table, codes, vectors.rows);
  const all = tableCodes(table);
  const metrics = {
    ...quantizationMetrics(all.codes, all.rows, table.levels, table.codesPerLevel),
    newItems: vectors.rows,
    // Items without text have all-zero vectors: no relative error to report (not a failure).
    ...(vectors.data.some((v) => v !== 0) ? { newItemsRelMse: relativeSquaredError(vectors, quantizer.decode(codes, vectors.rows)) } : {}),
  };
  const semanticIds = await writeSemanticIdsArtifact(store, table, {
    job: options.job,
    codebooks,
    inputs: [
      { role: 'new_item_vectors', hash: matrixHash(vectors), description: `float32 [${vectors.rows}, ${vectors.cols}]` },
      ...options.inputs,
    ],
    rebuildItems: current.settings.rebuildItems,
    previous: options.semanticIds,
    metrics,
  });
  log.info({ semanticIds: semanticIds.id, newItems: vectors.rows, items: table.items }, 'new items coded');
  return { table, semanticIds, firstItemId: current.table.items + 1, codes, metrics };
}
