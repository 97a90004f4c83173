import { z } from 'zod';
import { ArtifactError, describeValue } from '../errors';
import { npyFile, type ArtifactStore, type LoadedArtifact } from '../infra/artifacts';
import type { NpyArray } from '../infra/npy';
import { initTf } from '../infra/tf';
import type { ArtifactInput } from '../schemas/artifacts';
import { MAX_CODES_PER_LEVEL, QuantizerMethod, QuantizerSettings } from './config';
import type { QuantizationMetrics } from './metrics';
import { OptimizedProductQuantizer } from './opq';
import { ProductQuantizer } from './pq';
import type { Quantizer } from './quantizer';
import { ResidualQuantizer } from './rq';
import type { SemanticIdTable } from './semanticIds';

/**
 * The quantizer's artifacts, written with the ArtifactStore (atomic, hashed, manifest with lineage):
 *
 * - `codebooks`: `codebooks.npy` float32 `[levels, codesPerLevel, dims / levels]` (pq, opq) or
 *   `[levels, codesPerLevel, dims]` (rq, rqkmeans); opq adds `rotation.npy` float32 `[dims, dims]`.
 * - `semantic_ids`: `semantic_ids.npy` uint16 `[items + 1, digits]`, row 0 = padding.
 *
 * The manifests' `settings` follow the schemas below and are checked, with the file shapes, on load.
 */

const positiveInt = z.number().int().positive();

export const CodebooksArtifactSettings = z
  .strictObject({
    method: QuantizerMethod,
    dims: positiveInt.describe('Width of the vectors the quantizer codes.'),
    levels: positiveInt.describe('Code digits per vector.'),
    codesPerLevel: positiveInt.max(MAX_CODES_PER_LEVEL).describe('Codes per codebook.'),
    trainingRows: z.number().int().nonnegative().describe('Rows of the matrix the codebooks were fitted on.'),
    seed: z.number().int().describe('Seed of the Random the trainer was given.'),
    training: QuantizerSettings.describe('The full training settings.'),
  })
  .describe('Settings recorded in a `codebooks` manifest.');
export type CodebooksArtifactSettings = z.infer<typeof CodebooksArtifactSettings>;

export const SemanticIdsArtifactSettings = z
  .strictObject({
    method: QuantizerMethod,
    items: z.number().int().nonnegative().describe('Items with ids 1..items; row 0 is padding.'),
    levels: positiveInt.describe('Quantizer digits per item.'),
    codesPerLevel: positiveInt.max(MAX_CODES_PER_LEVEL).describe('Codes per level.'),
    disambiguated: z.boolean().describe('Whether a last digit numbering items that share a code vector was added.'),
    digits: positiveInt.describe('Digits per row: levels, plus 1 when disambiguated.'),
    paddingItemId: z.literal(0).describe('The padding row (all zeros).'),
    codebooksId: z.string().min(1).describe('Id of the codebooks artifact the codes come from.'),
    rebuildItems: z.number().int().nonnegative().describe('Items coded by the full rebuild; later ones were added with the same codebooks.'),
    previousId: z.string().optional().describe('The semantic_ids artifact this one extends (incremental versions only).'),
  })
  .describe('Settings recorded in a `semantic_ids` manifest.');
export type SemanticIdsArtifactSettings = z.infer<typeof SemanticIdsArtifactSettings>;

function parseSettings<T>(schema: z.ZodType<T>, artifact: LoadedArtifact): T {
  const parsed = schema.safeParse(artifact.manifest.settings, { reportInput: true });
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const received = issue && 'input' in issue ? `; received ${describeValue(issue.input)}` : '';
    throw new ArtifactError(
      `artifact ${artifact.id}: manifest settings are invalid at ${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'invalid'}${received}`,
      { context: { path: artifact.dir } },
    );
  }
  return parsed.data;
}

function expectKind(artifact: LoadedArtifact, kind: 'codebooks' | 'semantic_ids'): void {
  if (artifact.manifest.kind !== kind) {
    throw new ArtifactError(`expected a ${kind} artifact, received ${artifact.id} of kind ${artifact.manifest.kind}`, {
      context: { path: artifact.dir },
    });
  }
}

async function readArray(artifact: LoadedArtifact, name: string, dtype: NpyArray['dtype'], shape: number[]): Promise<NpyArray> {
  const array = await artifact.readNpy(name);
  if (array.dtype !== dtype || array.shape.join(',') !== shape.join(',')) {
    throw new ArtifactError(
      `artifact ${artifact.id}: ${name} is ${array.dtype} [${array.shape.join(', ')}], the manifest settings need ${dtype} [${shape.join(', ')}]`,
      { context: { path: artifact.dir } },
    );
  }
  return array;
}

export interface WriteCodebooksOptions {
  readonly job: string;
  /** Lineage of the training matrix: embeddings artifact, catalog snapshot, encoder (hashes). */
  readonly inputs: ArtifactInput[];
  readonly training: QuantizerSettings;
  readonly trainingRows: number;
  readonly seed: number;
  readonly metrics?: QuantizationMetrics | Record<string, unknown>;
}

/** Writes a quantizer as a new `codebooks` artifact version. */
export async function writeCodebooksArtifact(store: ArtifactStore, quantizer: Quantizer, options: WriteCodebooksOptions): Promise<LoadedArtifact> {
  const settings: CodebooksArtifactSettings = CodebooksArtifactSettings.parse({
    method: quantizer.kind,
    dims: quantizer.dims,
    levels: quantizer.levels,
    codesPerLevel: quantizer.codesPerLevel,
    trainingRows: options.trainingRows,
    seed: options.seed,
    training: options.training,
  });
  return store.write({
    kind: 'codebooks',
    job: options.job,
    settings,
    inputs: options.inputs,
    files: quantizer.toArtifactFiles(),
    ...(options.metrics ? { metrics: { ...options.metrics } } : {}),
  });
}

/**
 * Rebuilds the quantizer stored in a `codebooks` artifact (files checked against their size and
 * sha256, shapes against the manifest settings), ready to encode new items without refitting.
 */
export async function loadQuantizer(artifact: LoadedArtifact): Promise<Quantizer> {
  await initTf();
  expectKind(artifact, 'codebooks');
  const s = parseSettings(CodebooksArtifactSettings, artifact);
  if (s.method === 'pq' || s.method === 'opq') {
    if (s.dims % s.levels !== 0) {
      throw new ArtifactError(`artifact ${artifact.id}: settings dims = ${s.dims} is not divisible by levels = ${s.levels}`);
    }
    const books = await readArray(artifact, 'codebooks.npy', 'float32', [s.levels, s.codesPerLevel, s.dims / s.levels]);
    const pq = new ProductQuantizer(s.dims, s.levels, s.codesPerLevel, books.data as Float32Array);
    if (s.method === 'pq') return pq;
    const rotation = await readArray(artifact, 'rotation.npy', 'float32', [s.dims, s.dims]);
    return new OptimizedProductQuantizer({ data: rotation.data as Float32Array, rows: s.dims, cols: s.dims }, pq);
  }
  const books = await readArray(artifact, 'codebooks.npy', 'float32', [s.levels, s.codesPerLevel, s.dims]);
  return new ResidualQuantizer(s.method, s.dims, s.levels, s.codesPerLevel, books.data as Float32Array);
}

export interface WriteSemanticIdsOptions {
  readonly job: string;
  readonly codebooks: LoadedArtifact;
  /** Further lineage (e.g. the embeddings of items added incrementally). */
  readonly inputs: ArtifactInput[];
  readonly rebuildItems: number;
  readonly previous?: LoadedArtifact;
  readonly metrics?: QuantizationMetrics | Record<string, unknown>;
}

/** Writes a semantic-ID table as a new `semantic_ids` artifact version. */
export async function writeSemanticIdsArtifact(
  store: ArtifactStore,
  table: SemanticIdTable,
  options: WriteSemanticIdsOptions,
): Promise<LoadedArtifact> {
  expectKind(options.codebooks, 'codebooks');
  const codebooks = parseSettings(CodebooksArtifactSettings, options.codebooks);
  const settings: SemanticIdsArtifactSettings = SemanticIdsArtifactSettings.parse({
    method: codebooks.method,
    items: table.items,
    levels: table.levels,
    codesPerLevel: table.codesPerLevel,
    disambiguated: table.disambiguated,
    digits: table.digits,
    paddingItemId: 0,
    codebooksId: options.codebooks.id,
    rebuildItems: options.rebuildItems,
    ...(options.previous ? { previousId: options.previous.id } : {}),
  });
  const inputs: ArtifactInput[] = [
    { role: 'codebooks', hash: options.codebooks.id, artifactId: options.codebooks.id },
    ...(options.previous ? [{ role: 'previous_semantic_ids', hash: options.previous.id, artifactId: options.previous.id }] : []),
    ...options.inputs,
  ];
  return store.write({
    kind: 'semantic_ids',
    job: options.job,
    settings,
    inputs,
    files: [npyFile('semantic_ids.npy', table.codes, [table.items + 1, table.digits], 'item id -> code digits; row 0 = padding')],
    ...(options.metrics ? { metrics: { ...options.metrics } } : {}),
  });
}

/** Reads a semantic-ID table (file checked against size, sha256 and the manifest settings). */
export async function loadSemanticIdTable(artifact: LoadedArtifact): Promise<{ table: SemanticIdTable; settings: SemanticIdsArtifactSettings }> {
  expectKind(artifact, 'semantic_ids');
  const s = parseSettings(SemanticIdsArtifactSettings, artifact);
  if (s.digits !== s.levels + (s.disambiguated ? 1 : 0)) {
    throw new ArtifactError(`artifact ${artifact.id}: digits = ${s.digits} does not match levels = ${s.levels}, disambiguated = ${s.disambiguated}`);
  }
  const array = await readArray(artifact, 'semantic_ids.npy', 'uint16', [s.items + 1, s.digits]);
  const codes = array.data as Uint16Array;
  for (let i = 0; i < s.digits; i++) {
    if (codes[i] !== 0) throw new ArtifactError(`artifact ${artifact.id}: padding row 0 must be all zeros, found ${codes[i]} at digit ${i}`);
  }
  for (let r = 1; r <= s.items; r++) {
    for (let l = 0; l < s.levels; l++) {
      const c = codes[r * s.digits + l] as number;
      if (c >= s.codesPerLevel) {
        throw new ArtifactError(`artifact ${artifact.id}: item ${r} has code ${c} at level ${l}, out of range [0, ${s.codesPerLevel})`);
      }
    }
  }
  const table: SemanticIdTable = {
    items: s.items,
    levels: s.levels,
    codesPerLevel: s.codesPerLevel,
    disambiguated: s.disambiguated,
    digits: s.digits,
    codes,
  };
  return { table, settings: s };
}
