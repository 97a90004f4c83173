import type { Random } from '../random';

/**
 * Masked code modelling input, as the reference dataset's `__mask__` builds it (the BERT rule):
 * every code position is picked with probability `maskRatio`; a picked position keeps its
 * original code as the label and becomes the mask token (0) with probability 0.8, a uniformly
 * random code id in `1..codeCount` with probability 0.1, or stays unchanged with probability 0.1.
 */
export interface MaskedCodes {
  /** Same layout as the input, with the picked positions replaced. */
  readonly codes: Int32Array;
  /** Flat indices (into the input) of the picked positions, ascending. */
  readonly positions: Int32Array;
  /** Original global code id of each picked position (the label). */
  readonly labels: Int32Array;
}

/** The token that replaces 80% of the picked codes (also the padding code). */
export const MASK_TOKEN_ID = 0;

/**
 * Masks global code ids (`1..codeCount`; positions holding 0 are padding and never picked).
 * `codeCount` is `levels * codesPerLevel`.
 */
export function maskCodes(codes: Int32Array, codeCount: number, maskRatio: number, rng: Random): MaskedCodes {
  const out = Int32Array.from(codes);
  const positions: number[] = [];
  const labels: number[] = [];
  for (let i = 0; i < codes.length; i++) {
    const original = codes[i] as number;
    if (original === MASK_TOKEN_ID) continue;
    if (rng.next() >= maskRatio) continue;
    positions.push(i);
    labels.push(original);
    const r = rng.next();
    if (r < 0.8) out[i] = MASK_TOKEN_ID;
    else if (r < 0.9) out[i] = 1 + rng.int(codeCount);
  }
  return { codes: out, positions: Int32Array.from(positions), labels: Int32Array.from(labels) };
}
