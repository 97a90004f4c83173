import type { LoadedDataset } from '../ingest/datasets';
import { Random } from '../random';
import { ITEM_TEXT_FIELDS } from '../schemas/events';
import type { ItemIdMapping, ItemSideInfo } from './sideInfo';

/**
 * TEMPORARY stand-in side information, only so that CCFRec can be exercised end to end before
 * features/ (PCA-whitened text embeddings) and quantizer/ (semantic IDs, item registry) land.
 * The lead replaces it with the real artifacts; do not report CCFRec quality measured with it
 * as CCFRec's quality.
 *
 * - Text: every text field of the catalog event joined, lower-cased, split on non-letters;
 *   a hashed bag of words (signed feature hashing) projected to `dims` with a seeded Gaussian
 *   matrix, then each column standardised (mean 0, variance 1; no PCA rotation).
 * - Codes: random-hyperplane LSH of those vectors: level l, bit b is the sign of the projection
 *   on a seeded random direction, `log2(codesPerLevel)` bits per level.
 */
export interface TemporarySideInfoOptions {
  readonly dims: number;
  readonly levels: number;
  /** A power of two. */
  readonly codesPerLevel: number;
  readonly seed: number;
}

function hashWord(word: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < word.length; i++) {
    h ^= word.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

export function buildTemporarySideInfo(dataset: LoadedDataset, mapping: ItemIdMapping, options: TemporarySideInfoOptions): ItemSideInfo {
  const { dims, levels, codesPerLevel } = options;
  const n = mapping.itemCount;
  const rng = new Random(options.seed);
  const buckets = 1 << 14;
  // Projection rows are generated lazily per hash bucket, deterministically from the bucket id.
  const projection = new Map<number, Float32Array>();
  const rowOf = (bucket: number): Float32Array => {
    let row = projection.get(bucket);
    if (!row) {
      const r = new Random((options.seed * 31 + bucket) >>> 0);
      row = Float32Array.from({ length: dims }, () => r.normal());
      projection.set(bucket, row);
    }
    return row;
  };
  const table = new Float32Array((n + 1) * dims);
  for (const item of dataset.items) {
    const id = mapping.denseId(item.itemId);
    if (id === undefined) continue;
    const text = ITEM_TEXT_FIELDS.map((f) => (item as Record<string, unknown>)[f])
      .filter((v): v is string => typeof v === 'string')
      .join(' ')
      .toLowerCase();
    const words = text.split(/[^a-z0-9]+/).filter((w) => w.length > 1);
    for (const w of words) {
      const h = hashWord(w);
      const sign = h & 1 ? 1 : -1;
      const row = rowOf((h >>> 1) % buckets);
      for (let j = 0; j < dims; j++) table[id * dims + j] = (table[id * dims + j] as number) + (sign * (row[j] as number)) / Math.sqrt(words.length);
    }
  }
  for (let j = 0; j < dims; j++) {
    let mean = 0;
    for (let i = 1; i <= n; i++) mean += table[i * dims + j] as number;
    mean /= n;
    let variance = 0;
    for (let i = 1; i <= n; i++) variance += ((table[i * dims + j] as number) - mean) ** 2;
    const scale = 1 / Math.sqrt(variance / n + 1e-12);
    for (let i = 1; i <= n; i++) table[i * dims + j] = ((table[i * dims + j] as number) - mean) * scale;
  }
  const bits = Math.round(Math.log2(codesPerLevel));
  const planes = Float32Array.from({ length: levels * bits * dims }, () => rng.normal());
  const codes = new Int32Array((n + 1) * levels);
  for (let i = 1; i <= n; i++) {
    for (let l = 0; l < levels; l++) {
      let digit = 0;
      for (let b = 0; b < bits; b++) {
        let dot = 0;
        const base = (l * bits + b) * dims;
        for (let j = 0; j < dims; j++) dot += (planes[base + j] as number) * (table[i * dims + j] as number);
        digit = (digit << 1) | (dot > 0 ? 1 : 0);
      }
      codes[i * levels + l] = digit;
    }
  }
  return {
    itemCount: n,
    textFields: [{ name: 'text', dims, table }],
    codes: { levels, codesPerLevel, table: codes },
    artifactIds: {},
  };
}
