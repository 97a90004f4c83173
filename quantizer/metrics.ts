import { ValidationError } from '../errors';
import type { Matrix } from '../infra/matrix';

/**
 * Quality numbers of a quantization, written with every codebooks and semantic-ID artifact.
 *
 * - relative reconstruction error: `sum_i ||x_i - x^_i||^2 / sum_i ||x_i||^2`;
 * - per-level utilization: the fraction of the level's codes that at least one item uses, and
 *   the perplexity `exp(H)` of the level's code distribution (`H` in nats; equals the number of
 *   codes when all are used equally, 1 when one code takes every item);
 * - collision rate: the fraction of items whose full code vector is shared with at least one
 *   other item (items [A, A, B] give 2/3; all distinct gives 0).
 */

export interface LevelUtilization {
  readonly level: number;
  /** Codes used by at least one item. */
  readonly used: number;
  /** `used / codesPerLevel`. */
  readonly fractionUsed: number;
  /** `exp(entropy)` of the code distribution at this level. */
  readonly perplexity: number;
}

export interface CollisionStats {
  /** Fraction of items whose code vector is shared with at least one other item. */
  readonly collisionRate: number;
  /** Number of distinct code vectors. */
  readonly distinctCodes: number;
  /** Largest number of items sharing one code vector. */
  readonly maxItemsPerCode: number;
}

export interface QuantizationMetrics extends CollisionStats {
  readonly items: number;
  /** Relative reconstruction error (see module doc); absent when no vectors were given. */
  readonly relMse?: number;
  readonly utilization: LevelUtilization[];
  /** Mean over levels of `fractionUsed`. */
  readonly meanFractionUsed: number;
  /** Mean over levels of `perplexity`. */
  readonly meanPerplexity: number;
}

/** `sum ||x - recon||^2 / sum ||x||^2` over all rows (both `[n, d]`). */
export function relativeSquaredError(x: Matrix, recon: Matrix): number {
  if (x.rows !== recon.rows || x.cols !== recon.cols) {
    throw new ValidationError(
      `relativeSquaredError: reconstruction is [${recon.rows}, ${recon.cols}], expected the input's shape [${x.rows}, ${x.cols}]`,
    );
  }
  let err = 0;
  let norm = 0;
  for (let i = 0; i < x.data.length; i++) {
    const v = x.data[i] as number;
    const e = v - (recon.data[i] as number);
    err += e * e;
    norm += v * v;
  }
  if (norm === 0) throw new ValidationError('relativeSquaredError: the input vectors are all zero (sum of squared norms is 0)');
  return err / norm;
}

/** Utilization of every level of `[rows, levels]` codes. */
export function codeUtilization(codes: Uint16Array, rows: number, levels: number, codesPerLevel: number): LevelUtilization[] {
  const out: LevelUtilization[] = [];
  for (let l = 0; l < levels; l++) {
    const counts = new Float64Array(codesPerLevel);
    for (let r = 0; r < rows; r++) {
      const c = codes[r * levels + l] as number;
      counts[c] = (counts[c] as number) + 1;
    }
    let used = 0;
    let entropy = 0;
    for (let c = 0; c < codesPerLevel; c++) {
      const n = counts[c] as number;
      if (n === 0) continue;
      used++;
      const p = n / rows;
      entropy -= p * Math.log(p);
    }
    out.push({ level: l, used, fractionUsed: used / codesPerLevel, perplexity: rows > 0 ? Math.exp(entropy) : 0 });
  }
  return out;
}

/** A compact string key for the code vector of row `r` (for grouping equal vectors). */
export function codeKey(codes: Uint16Array, r: number, levels: number): string {
  return String.fromCharCode(...codes.subarray(r * levels, (r + 1) * levels));
}

/** How many items share each code vector. */
export function codeGroups(codes: Uint16Array, rows: number, levels: number): Map<string, number> {
  const groups = new Map<string, number>();
  for (let r = 0; r < rows; r++) {
    const key = codeKey(codes, r, levels);
    groups.set(key, (groups.get(key) ?? 0) + 1);
  }
  return groups;
}

/** Collision statistics of `[rows, levels]` codes (see module doc for the definition). */
export function collisionStats(codes: Uint16Array, rows: number, levels: number): CollisionStats {
  const groups = codeGroups(codes, rows, levels);
  let colliding = 0;
  let maxItemsPerCode = 0;
  for (const n of groups.values()) {
    if (n > 1) colliding += n;
    maxItemsPerCode = Math.max(maxItemsPerCode, n);
  }
  return { collisionRate: rows > 0 ? colliding / rows : 0, distinctCodes: groups.size, maxItemsPerCode };
}

/** All metrics of codes `[rows, levels]`; `x` and `recon` (both `[rows, d]`) give relMse when present. */
export function quantizationMetrics(
  codes: Uint16Array,
  rows: number,
  levels: number,
  codesPerLevel: number,
  vectors?: { x: Matrix; recon: Matrix },
): QuantizationMetrics {
  const utilization = codeUtilization(codes, rows, levels, codesPerLevel);
  const mean = (f: (u: LevelUtilization) => number): number => utilization.reduce((s, u) => s + f(u), 0) / Math.max(1, levels);
  return {
    items: rows,
    ...(vectors ? { relMse: relativeSquaredError(vectors.x, vectors.recon) } : {}),
    utilization,
    meanFractionUsed: mean((u) => u.fractionUsed),
    meanPerplexity: mean((u) => u.perplexity),
    ...collisionStats(codes, rows, levels),
  };
}
