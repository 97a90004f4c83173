import type { tf } from '../../infra/tf';
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
