import { createHash } from 'node:crypto';
import { ValidationError, describeValue } from '../errors';
import { sha256InSlices } from '../infra/artifacts';
import { inSlices } from '../infra/slices';

/**
 * What the trainer needs from the stages before it (features/ and quantizer/), as a small
 * contract of plain typed arrays so that trainer/ does not depend on their code. Item ids are
 * dense, 1..N; 0 is padding everywhere.
 */

/** One frozen, PCA-whitened text embedding table (features/). */
export interface TextFieldTable {
  /** Field name, e.g. `meta` (Scientific) or `title`. */
  readonly name: string;
  /** Columns E; CCFRec needs E = embeddingSize. */
  readonly dims: number;
  /** `[N + 1, E]` row-major; row 0 (padding) is zeros, row i is item i. */
  readonly table: Float32Array;
}

/** Semantic IDs (quantizer/): one digit per level for every item. */
export interface SemanticIdTable {
  readonly levels: number;
  readonly codesPerLevel: number;
  /** `[N + 1, levels]` row-major digits in `[0, codesPerLevel)`; row 0 (padding) is zeros. */
  readonly table: Int32Array | Uint16Array;
}

/** Artifact ids the side information came from, carried into checkpoints and run rows. */
export interface SideInfoArtifactIds {
  readonly itemRegistry?: string;
  /** One embeddings artifact per text field, keyed by field name. */
  readonly textEmbeddings?: Readonly<Record<string, string>>;
  readonly pca?: string;
  readonly semanticIds?: string;
}

/** Everything CCFRec needs about the catalog. */
export interface ItemSideInfo {
  /** N: items have dense ids 1..N. */
  readonly itemCount: number;
  readonly textFields: readonly TextFieldTable[];
  readonly codes: SemanticIdTable;
  readonly artifactIds: SideInfoArtifactIds;
}

/** Maps the datasets' external item ids (strings) to dense ids 1..N (the item registry). */
export interface ItemIdMapping {
  readonly itemCount: number;
  /** Dense id of an external id, or undefined when the registry does not know it. */
  denseId(externalId: string): number | undefined;
  /** External id of a dense id 1..N, or undefined outside that range. */
  externalId(denseId: number): string | undefined;
}

/** Maps external ids to dense ids; unknown ids throw (`onUnknown: 'throw'`) or become 0. */
export function toDenseIds(mapping: ItemIdMapping, externalIds: readonly string[], onUnknown: 'throw' | 'zero' = 'throw'): Int32Array {
  const out = new Int32Array(externalIds.length);
  for (let i = 0; i < externalIds.length; i++) {
    const id = mapping.denseId(externalIds[i] as string);
    if (id === undefined) {
      if (onUnknown === 'throw') {
        throw new ValidationError(`item ${JSON.stringify(externalIds[i])} is not in the item registry (${mapping.itemCount} items)`, {
          context: { itemId: externalIds[i] as string },
        });
      }
      out[i] = 0;
    } else {
      out[i] = id;
    }
  }
  return out;
}

/** An id mapping where the i-th external id gets dense id i + 1 (tests, SASRec without a registry). */
export function itemIdMappingFromList(externalIds: readonly string[]): ItemIdMapping {
  const byId = new Map<string, number>();
  externalIds.forEach((id, i) => {
    if (byId.has(id)) throw new ValidationError(`duplicate item id ${JSON.stringify(id)} at position ${i}`, { context: { itemId: id } });
    byId.set(id, i + 1);
  });
  const list = [...externalIds];
  return { itemCount: list.length, denseId: (id) => byId.get(id), externalId: (dense) => (Number.isInteger(dense) && dense >= 1 ? list[dense - 1] : undefined) };
}

/**
 * Global code ids as the reference builds them: `digit + level * codesPerLevel + 1`, so that
 * levels do not collide and 0 stays free for padding and the mask token. Returns `[N + 1, levels]`
 * with row 0 all zeros.
 */
export function globalCodeIds(codes: SemanticIdTable): Int32Array {
  const { levels, codesPerLevel, table } = codes;
  const out = new Int32Array(table.length);
  const rows = table.length / levels;
  for (let r = 1; r < rows; r++) {
    for (let l = 0; l < levels; l++) out[r * levels + l] = (table[r * levels + l] as number) + l * codesPerLevel + 1;
  }
  return out;
}

/** Checks shapes, padding rows and digit ranges; throws a ValidationError naming the field. */
export function validateSideInfo(info: ItemSideInfo): void {
  if (wasValidated(info)) return;
  validateSideInfoShapes(info);
  checkCodeDigits(info, info.codes.levels, info.codes.table.length);
  for (const f of info.textFields) checkFiniteText(f, 0, f.table.length);
  markValidated(info);
}

/**
 * {@link validateSideInfo} with the scans of the code and text tables a slice at a time, yielding
 * to the event loop between slices: for a server that loads a model beside live traffic (at
 * 100,000 items the scans take ~70-100 ms at once). The model built from `info` afterwards does not
 * scan it again (while its tables are the same arrays).
 */
export async function validateSideInfoInSlices(info: ItemSideInfo): Promise<void> {
  if (wasValidated(info)) return;
  validateSideInfoShapes(info);
  await inSlices(info.codes.table.length - info.codes.levels, VALIDATE_SLICE_VALUES, (from, to) => checkCodeDigits(info, info.codes.levels + from, info.codes.levels + to));
  for (const f of info.textFields) await inSlices(f.table.length, VALIDATE_SLICE_VALUES, (from, to) => checkFiniteText(f, from, to));
  markValidated(info);
}

/** Values scanned between two yields by {@link validateSideInfoInSlices}. */
const VALIDATE_SLICE_VALUES = 1 << 20;

/** Side information validated whole, with the arrays it held then (a table replaced since is validated again). */
const validated = new WeakMap<ItemSideInfo, readonly unknown[]>();

function tablesOf(info: ItemSideInfo): unknown[] {
  return [info.itemCount, info.codes.table, info.codes.levels, info.codes.codesPerLevel, ...info.textFields.flatMap((f) => [f.name, f.dims, f.table])];
}

function wasValidated(info: ItemSideInfo): boolean {
  const seen = validated.get(info);
  if (!seen) return false;
  const now = tablesOf(info);
  return now.length === seen.length && now.every((v, i) => v === seen[i]);
}

function markValidated(info: ItemSideInfo): void {
  validated.set(info, tablesOf(info));
}

/** The checks of {@link validateSideInfo} that read a fixed number of values: counts, shapes, padding rows, field names. */
function validateSideInfoShapes(info: ItemSideInfo): void {
  const n = info.itemCount;
  if (!Number.isInteger(n) || n < 1) throw new ValidationError(`side info: itemCount must be a positive integer, got ${describeValue(n)}`);
  const { levels, codesPerLevel, table } = info.codes;
  if (!Number.isInteger(levels) || levels < 1) throw new ValidationError(`side info: codes.levels must be a positive integer, got ${describeValue(levels)}`);
  if (!Number.isInteger(codesPerLevel) || codesPerLevel < 1) {
    throw new ValidationError(`side info: codes.codesPerLevel must be a positive integer, got ${describeValue(codesPerLevel)}`);
  }
  if (table.length !== (n + 1) * levels) {
    throw new ValidationError(
      `side info: codes.table must hold (itemCount + 1) * levels = ${(n + 1) * levels} digits ([${n + 1}, ${levels}]), got ${table.length}`,
      { context: { field: 'codes.table' } },
    );
  }
  for (let l = 0; l < levels; l++) {
    if (table[l] !== 0) throw new ValidationError('side info: codes.table row 0 (padding) must be zeros', { context: { field: 'codes.table' } });
  }
  if (info.textFields.length === 0) throw new ValidationError('side info: at least one text field is needed', { context: { field: 'textFields' } });
  const names = new Set<string>();
  for (const f of info.textFields) {
    if (names.has(f.name)) throw new ValidationError(`side info: duplicate text field ${JSON.stringify(f.name)}`, { context: { field: 'textFields' } });
    names.add(f.name);
    if (f.table.length !== (n + 1) * f.dims) {
      throw new ValidationError(
        `side info: text field ${JSON.stringify(f.name)} must be [${n + 1}, ${f.dims}] (${(n + 1) * f.dims} values), got ${f.table.length}`,
        { context: { field: `textFields.${f.name}` } },
      );
    }
    for (let j = 0; j < f.dims; j++) {
      if (f.table[j] !== 0) {
        throw new ValidationError(`side info: text field ${JSON.stringify(f.name)} row 0 (padding) must be zeros`, {
          context: { field: `textFields.${f.name}` },
        });
      }
    }
  }
}

/** Code digits `[from, to)` of the flat codes table are in 0..codesPerLevel - 1. */
function checkCodeDigits(info: ItemSideInfo, from: number, to: number): void {
  const { levels, codesPerLevel, table } = info.codes;
  for (let i = from; i < to; i++) {
    const d = table[i] as number;
    if (d < 0 || d >= codesPerLevel) {
      throw new ValidationError(
        `side info: code digit of item ${Math.floor(i / levels)} level ${i % levels} is ${d}, expected 0..${codesPerLevel - 1}`,
        { context: { field: 'codes.table', itemId: String(Math.floor(i / levels)) } },
      );
    }
  }
}

/** Values `[from, to)` of a text table are finite. */
function checkFiniteText(f: TextFieldTable, from: number, to: number): void {
  for (let j = from; j < to; j++) {
    if (!Number.isFinite(f.table[j] as number)) {
      throw new ValidationError(`side info: text field ${JSON.stringify(f.name)} has a non-finite value at row ${Math.floor(j / f.dims)}`, {
        context: { field: `textFields.${f.name}` },
      });
    }
  }
}

/** sha256 of a typed array's bytes (lineage of side information inside checkpoints). */
export function hashTypedArray(values: Float32Array | Int32Array | Uint16Array): string {
  return createHash('sha256').update(Buffer.from(values.buffer, values.byteOffset, values.byteLength)).digest('hex');
}

/** What a checkpoint records about the side information its model was built on. */
export interface SideInfoFingerprint {
  readonly itemCount: number;
  readonly levels: number;
  readonly codesPerLevel: number;
  readonly codesSha256: string;
  readonly textFields: ReadonlyArray<{ readonly name: string; readonly dims: number; readonly sha256: string }>;
}

/**
 * The fingerprint of `info`, or of its first `items` items only (rows 0..items of every table): a
 * grown catalog's prefix fingerprint equals the fingerprint of the catalog it grew from.
 */
export function sideInfoFingerprint(info: ItemSideInfo, items: number = info.itemCount): SideInfoFingerprint {
  const { codes, fields } = fingerprinted(info, items);
  return { ...shapeOf(info, items), codesSha256: hashTypedArray(codes), textFields: fields.map((f) => ({ name: f.name, dims: f.dims, sha256: hashTypedArray(f.values) })) };
}

/**
 * {@link sideInfoFingerprint}, hashed in slices with the event loop let in between (a checkpoint
 * loaded beside live traffic hashes ~100 MB of text tables at 100,000 items).
 */
export async function sideInfoFingerprintInSlices(info: ItemSideInfo, items: number = info.itemCount): Promise<SideInfoFingerprint> {
  const { codes, fields } = fingerprinted(info, items);
  const textFields: Array<SideInfoFingerprint['textFields'][number]> = [];
  for (const f of fields) textFields.push({ name: f.name, dims: f.dims, sha256: await hashTypedArrayInSlices(f.values) });
  return { ...shapeOf(info, items), codesSha256: await hashTypedArrayInSlices(codes), textFields };
}

/** The arrays a fingerprint hashes: the codes and every text table, rows 0..items. */
function fingerprinted(info: ItemSideInfo, items: number): { readonly codes: Int32Array; readonly fields: ReadonlyArray<{ readonly name: string; readonly dims: number; readonly values: Float32Array }> } {
  if (!Number.isInteger(items) || items < 1 || items > info.itemCount) {
    throw new ValidationError(`side info fingerprint: items must be 1..${info.itemCount}, got ${describeValue(items)}`);
  }
  const rows = items + 1;
  return {
    codes: Int32Array.from(info.codes.table.subarray(0, rows * info.codes.levels)),
    fields: info.textFields.map((f) => ({ name: f.name, dims: f.dims, values: f.table.subarray(0, rows * f.dims) })),
  };
}

function shapeOf(info: ItemSideInfo, items: number): Pick<SideInfoFingerprint, 'itemCount' | 'levels' | 'codesPerLevel'> {
  return { itemCount: items, levels: info.codes.levels, codesPerLevel: info.codes.codesPerLevel };
}

async function hashTypedArrayInSlices(values: Float32Array | Int32Array): Promise<string> {
  return sha256InSlices(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
}
