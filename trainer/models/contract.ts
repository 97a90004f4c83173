import type { tf } from '../../infra/tf';
import { ValidationError } from '../../errors';
import type { Random } from '../../random';
import type { ModelConfig, ModelType } from '../config';
import type { SequenceBatch } from '../data';
import type { NamedWeight, WeightValues } from '../layers/params';

/** A loss and its named parts (`rec`, `mlm`, `cl`, ...), all scalars. */
export interface LossResult {
  readonly total: tf.Scalar;
  readonly parts: Readonly<Record<string, tf.Scalar>>;
}

/**
 * The one contract every sequential recommender in streamrec fulfils, so that training,
 * evaluation and checkpoints are the same code for CCFRec and SASRec. Item ids are dense 1..N,
 * 0 is padding. Methods returning tensors create them for the caller, who disposes them (or
 * calls inside `tf.tidy`).
 */
export interface SequentialRecommender {
  readonly modelType: ModelType;
  readonly config: ModelConfig;
  /** N */
  readonly itemCount: number;
  /** H */
  readonly hiddenSize: number;
  /** Every weight the model owns (trained or not), with its checkpoint name. */
  readonly weights: readonly NamedWeight[];

  /** Sequence vectors at inference (no dropout): the transformer output at each history's last item. `[B, H]` */
  encodeSequences(batch: SequenceBatch): tf.Tensor2D;

  /** The training loss of a batch (dropout on); every random choice is drawn from `rng`. */
  computeLoss(batch: SequenceBatch, rng: Random): LossResult;

  /** L2-normalised candidate vectors of all items at inference, row 0 = padding. `[N + 1, H]` */
  itemTable(): tf.Tensor2D;

  /**
   * Rows `start..end - 1` of {@link itemTable}, computed for those items only: the same numbers
   * for ranges on the {@link ITEM_TABLE_CHUNK} grid, within float rounding elsewhere. `[end - start, H]`
   */
  itemTableRows(start: number, end: number): tf.Tensor2D;

  /**
   * The vector each item enters the sequence encoder with at inference (before the position
   * embeddings), for every item: {@link encodeSequences} equals the sequence encoder over these
   * rows gathered by the history's ids. Row 0 (padding) is computed like the others and never
   * read by {@link encodeSequences}. What an exported encoder (serving/onnx) looks its ids up in. `[N + 1, H]`
   */
  tokenTable(): tf.Tensor2D;

  /**
   * Cosine scores of every item for each sequence. `[B, N + 1]`; column 0 (padding) is a score
   * like any other, the evaluation masks it. Pass a precomputed {@link itemTable} to score many
   * batches against one table.
   */
  scoreAllItems(batch: SequenceBatch, itemTable?: tf.Tensor2D): tf.Tensor2D;

  /** The trained variables (what the optimizer updates). */
  trainableVariables(): tf.Variable[];

  /** Host copies of every weight, by name. */
  getWeights(): Map<string, WeightValues>;

  /** Overwrites every weight; names and shapes must match exactly. */
  setWeights(values: ReadonlyMap<string, WeightValues>): void;

  /** Frees all tensors the model holds. */
  dispose(): void;
}

/** Checks an item-row range of a table `[N + 1, H]`: `0 <= start < end <= N + 1`. */
export function checkRows(start: number, end: number, itemCount: number): void {
  if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end <= start || end > itemCount + 1) {
    throw new ValidationError(`item table rows: expected integers 0 <= start < end <= ${itemCount + 1}, got ${start}..${end}`, { context: { field: 'rows' } });
  }
}

/**
 * Items per matrix product when a model computes vectors for all items (CCFRec's Q-Former): row
 * ranges on this grid give bit-identical numbers however they are grouped; other ranges agree
 * within float rounding (the products have other shapes).
 */
export const ITEM_TABLE_CHUNK = 1024;

/**
 * A host copy of the model's {@link SequentialRecommender.itemTable} (the same numbers), computed
 * `rowsPerSlice` rows (a multiple of {@link ITEM_TABLE_CHUNK}) at a time with a yield to the event
 * loop after each: a server loading a new version of a large catalog keeps answering meanwhile.
 * `[N + 1, H]`
 */
export async function hostItemTable(model: SequentialRecommender, rowsPerSlice = ITEM_TABLE_CHUNK): Promise<Float32Array> {
  if (!Number.isInteger(rowsPerSlice) || rowsPerSlice < ITEM_TABLE_CHUNK || rowsPerSlice % ITEM_TABLE_CHUNK !== 0) {
    throw new ValidationError(`hostItemTable: rowsPerSlice must be a multiple of ${ITEM_TABLE_CHUNK}, got ${rowsPerSlice}`, { context: { field: 'rowsPerSlice' } });
  }
  const H = model.hiddenSize;
  const rows = model.itemCount + 1;
  const out = new Float32Array(rows * H);
  for (let start = 0; start < rows; start += rowsPerSlice) {
    const slice = model.itemTableRows(start, Math.min(rows, start + rowsPerSlice));
    try {
      out.set((await slice.data()) as Float32Array, start * H);
    } finally {
      slice.dispose();
    }
    await new Promise((resolve) => setImmediate(resolve));
  }
  return out;
}
