import { ValidationError, describeValue } from '../../errors';
import type { SequenceBatch } from '../../trainer';

/** The engines that can compute user vectors. */
export const USER_ENCODER_KINDS = ['tfjs', 'onnx'] as const;
export type UserEncoderKind = (typeof USER_ENCODER_KINDS)[number];

/**
 * The user-vector side of a sequential recommender as serving needs it: histories in, one
 * L2-normalised vector per history out, to be scored by inner product with the model's item table
 * (`model.itemTable()`, also L2-normalised). The text prior of a model trained with one is not
 * part of the user vector: serving fuses it with the scores.
 *
 * Every engine checks its input with {@link checkEncoderBatch} first, so a bad batch is the same
 * ValidationError whichever engine runs.
 */
export interface UserEncoder {
  readonly kind: UserEncoderKind;
  /** N: ids 1..N are items, 0 is padding. */
  readonly itemCount: number;
  /** H */
  readonly hiddenSize: number;
  /** L: the most history items the model reads (longer batches are an error: cut them first, as makeBatch does). */
  readonly maxHistoryLength: number;
  /** `[B * H]` row-major, each row L2-normalised (`x / max(|x|, 1e-12)`). */
  encode(batch: SequenceBatch): Promise<Float32Array>;
  /** Frees what the engine holds (the ONNX session; the TF.js engine does not own its model). */
  dispose(): Promise<void>;
}

/** What a batch is checked against. */
export interface EncoderLimits {
  readonly itemCount: number;
  readonly maxHistoryLength: number;
}

/**
 * Checks that `batch` is what the models read: `B >= 1` rows of `maxLength <= L` positions,
 * left-aligned (row b holds `lengths[b]` ids in 1..N, then zeros), every length in 1..maxLength.
 * Throws a ValidationError naming the row, position and value otherwise.
 */
export function checkEncoderBatch(batch: SequenceBatch, limits: EncoderLimits): void {
  const { size: B, maxLength: L } = batch;
  const N = limits.itemCount;
  const fail = (message: string, field: string): never => {
    throw new ValidationError(`user encoder: ${message}`, { context: { field } });
  };
  if (!Number.isInteger(B) || B < 1) fail(`batch.size must be a positive integer, got ${describeValue(B)}`, 'size');
  if (!Number.isInteger(L) || L < 1) fail(`batch.maxLength must be a positive integer, got ${describeValue(L)}`, 'maxLength');
  if (L > limits.maxHistoryLength) {
    fail(`batch.maxLength is ${L}, the model reads at most ${limits.maxHistoryLength} history items (cut histories to their last ${limits.maxHistoryLength}, as makeBatch does)`, 'maxLength');
  }
  if (batch.items.length !== B * L) fail(`batch.items must hold size * maxLength = ${B} * ${L} = ${B * L} ids ([B, L]), got ${batch.items.length}`, 'items');
  if (batch.lengths.length !== B) fail(`batch.lengths must hold size = ${B} lengths, got ${batch.lengths.length}`, 'lengths');
  for (let b = 0; b < B; b++) {
    const len = batch.lengths[b] as number;
    if (!Number.isInteger(len) || len < 1 || len > L) fail(`row ${b}: length must be in 1..${L}, got ${describeValue(len)}`, `lengths.${b}`);
    for (let l = 0; l < L; l++) {
      const id = batch.items[b * L + l] as number;
      if (l < len && (!Number.isInteger(id) || id < 1 || id > N)) {
        fail(`row ${b}, position ${l}: item id must be in 1..${N} (0 is padding, after the row's ${len} items only), got ${describeValue(id)}`, `items.${b * L + l}`);
      }
      if (l >= len && id !== 0) fail(`row ${b}, position ${l}: expected padding 0 after the row's ${len} items (histories are left-aligned), got ${describeValue(id)}`, `items.${b * L + l}`);
    }
  }
}
