import { ValidationError } from '../errors';
import { codeKey } from './metrics';

/**
 * The semantic-ID table: item integer id -> code digits, level by level.
 *
 * Item ids are `1..items`; row 0 is the padding item (all digits 0; models mask it by id, not by
 * its digits). Row `r` of the matrix a table is built from is item id `r + 1`, so a caller that
 * keeps its item registry stable keeps ids stable across versions.
 *
 * With `disambiguate`, one extra last digit numbers the items that share a code vector, in item
 * id order (0, 1, 2, ...), so that every item's full ID is unique; its range is not bounded by
 * `codesPerLevel`.
 */
export interface SemanticIdTable {
  /** Items with ids `1..items`. */
  readonly items: number;
  /** Quantizer digits per item (without the disambiguation digit). */
  readonly levels: number;
  readonly codesPerLevel: number;
  /** Whether the last digit is the disambiguation digit. */
  readonly disambiguated: boolean;
  /** Digits per row: `levels + (disambiguated ? 1 : 0)`. */
  readonly digits: number;
  /** `[items + 1, digits]`, row 0 = padding. */
  readonly codes: Uint16Array;
}

/** Largest disambiguation digit + 1 (the digit is stored as uint16). */
const MAX_SHARED = 65536;

/**
 * Builds a table from quantizer codes `[rows, levels]` of items `1..rows`.
 */
export function buildSemanticIdTable(
  codes: Uint16Array,
  rows: number,
  levels: number,
  codesPerLevel: number,
  options: { disambiguate?: boolean } = {},
): SemanticIdTable {
  const empty: SemanticIdTable = {
    items: 0,
    levels,
    codesPerLevel,
    disambiguated: options.disambiguate ?? false,
    digits: levels + (options.disambiguate ? 1 : 0),
    codes: new Uint16Array(levels + (options.disambiguate ? 1 : 0)),
  };
  return appendToSemanticIdTable(empty, codes, rows);
}

/**
 * A new table with items `items + 1 .. items + rows` appended (codes `[rows, levels]`); existing
 * rows are copied unchanged. Disambiguation digits of new items continue each group's numbering.
 */
export function appendToSemanticIdTable(table: SemanticIdTable, codes: Uint16Array, rows: number): SemanticIdTable {
  const { levels, digits } = table;
  if (codes.length !== rows * levels) {
    throw new ValidationError(`semantic-ID table: codes has ${codes.length} entries, expected rows * levels = ${rows} * ${levels}`);
  }
  const out = new Uint16Array((table.items + 1 + rows) * digits);
  out.set(table.codes);
  const counts = table.disambiguated ? groupCounts(table) : undefined;
  for (let r = 0; r < rows; r++) {
    const row = table.items + 1 + r;
    for (let l = 0; l < levels; l++) {
      const c = codes[r * levels + l] as number;
      if (c >= table.codesPerLevel) {
        throw new ValidationError(`semantic-ID table: code ${c} at row ${r}, level ${l} is out of range [0, ${table.codesPerLevel})`);
      }
      out[row * digits + l] = c;
    }
    if (counts) {
      const key = codeKey(codes, r, levels);
      const seen = counts.get(key) ?? 0;
      if (seen >= MAX_SHARED) {
        throw new ValidationError(`semantic-ID table: more than ${MAX_SHARED} items share one code vector; the disambiguation digit is uint16`);
      }
      out[row * digits + levels] = seen;
      counts.set(key, seen + 1);
    }
  }
  return { ...table, items: table.items + rows, codes: out };
}

/** Items per code vector among the table's items. */
function groupCounts(table: SemanticIdTable): Map<string, number> {
  const counts = new Map<string, number>();
  const { codes } = tableCodes(table);
  for (let r = 0; r < table.items; r++) {
    const key = codeKey(codes, r, table.levels);
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

/** The quantizer codes of items `1..items` without padding and disambiguation digit: `[items, levels]`. */
export function tableCodes(table: SemanticIdTable): { codes: Uint16Array; rows: number } {
  const { levels, digits, items } = table;
  const codes = new Uint16Array(items * levels);
  for (let r = 0; r < items; r++) codes.set(table.codes.subarray((r + 1) * digits, (r + 1) * digits + levels), r * levels);
  return { codes, rows: items };
}

/** The digits of one item (`1..items`; 0 is the padding row). */
export function semanticIdOf(table: SemanticIdTable, itemId: number): number[] {
  if (!Number.isInteger(itemId) || itemId < 0 || itemId > table.items) {
    throw new ValidationError(`semanticIdOf: itemId must be an integer in [0, ${table.items}], received ${itemId}`, {
      context: { itemId: String(itemId) },
    });
  }
  return Array.from(table.codes.subarray(itemId * table.digits, (itemId + 1) * table.digits));
}
