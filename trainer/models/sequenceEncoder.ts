import { tf } from '../../infra/tf';
import type { SequenceBatch } from '../data';
import type { PackedGrid } from '../layers/attention';
import { LayerNorm } from '../layers/dense';
import { dropout, type ForwardContext } from '../layers/dropout';
import type { ParamSet } from '../layers/params';
import { TransformerEncoder, causalPaddingMask, type TransformerShape } from '../layers/transformer';

/**
 * The non-padding tokens of a batch in row-major order (host side). Histories are left-aligned,
 * so row b's tokens are its positions 0..lengths[b]-1.
 */
export interface SequenceLayout {
  /** V */
  readonly tokenCount: number;
  /** `[V]` item id of each token. */
  readonly items: Int32Array;
  /** `[V]` flat grid position b * L + l. */
  readonly positions: Int32Array;
  /** `[V]` position l inside its row (position-embedding id). */
  readonly positionIds: Int32Array;
  /** `[B * L]` token index of each grid position, V for padding. */
  readonly placement: Int32Array;
  /** `[B]` token index of each row's last item. */
  readonly lastTokens: Int32Array;
}

export function sequenceLayout(batch: SequenceBatch): SequenceLayout {
  const { size: B, maxLength: L } = batch;
  let V = 0;
  for (let b = 0; b < B; b++) V += batch.lengths[b] as number;
  const items = new Int32Array(V);
  const positions = new Int32Array(V);
  const positionIds = new Int32Array(V);
  const placement = new Int32Array(B * L).fill(V);
  const lastTokens = new Int32Array(B);
  let t = 0;
  for (let b = 0; b < B; b++) {
    const len = batch.lengths[b] as number;
    for (let l = 0; l < len; l++, t++) {
      items[t] = batch.items[b * L + l] as number;
      positions[t] = b * L + l;
      positionIds[t] = l;
      placement[b * L + l] = t;
    }
    lastTokens[b] = t - 1;
  }
  return { tokenCount: V, items, positions, positionIds, placement, lastTokens };
}

/**
 * The sequence half both models share (the reference's `forward` after the item vectors):
 * item vectors + position embeddings -> LayerNorm -> dropout -> causal transformer -> the output
 * at each history's last item. Runs on the batch's non-padding tokens only (exactly the
 * reference's result at every non-padding position; see MultiHeadAttention.applyPacked).
 */
export class SequenceEncoder {
  private readonly positions: tf.Variable; // [maxLength, H]
  private readonly norm: LayerNorm;
  private readonly transformer: TransformerEncoder;

  constructor(
    params: ParamSet,
    private readonly shape: TransformerShape & { readonly maxLength: number },
  ) {
    this.positions = params.normal('positionEmbedding', [shape.maxLength, shape.hiddenSize], shape.initializerRange, 'embedding');
    this.norm = new LayerNorm(params.child('norm'), shape.hiddenSize, shape.layerNormEps);
    this.transformer = new TransformerEncoder(params.child('transformer'), shape);
  }

  /**
   * @param tokens `[V, H]` vectors of the batch's history items, in {@link SequenceLayout} order
   * @returns `[B, H]` the transformer output at each row's last item
   */
  apply(tokens: tf.Tensor2D, batch: SequenceBatch, layout: SequenceLayout, ctx: ForwardContext): tf.Tensor2D {
    const { size: B, maxLength: L } = batch;
    if (L > this.shape.maxLength) throw new Error(`batch histories have ${L} positions, the model has ${this.shape.maxLength}`);
    const positioned = tf.add(tokens, tf.gather(this.positions, tf.tensor1d(layout.positionIds, 'int32'))); // [V, H]
    const embedded = dropout(this.norm.apply(positioned), this.shape.dropout, ctx) as tf.Tensor2D; // [V, H]
    const grid: PackedGrid = {
      batchSize: B,
      maxLength: L,
      placement: tf.tensor1d(layout.placement, 'int32'),
      positions: tf.tensor1d(layout.positions, 'int32'),
    };
    const mask = causalPaddingMask(batch.items, B, L); // [B, 1, L, L]
    const output = this.transformer.applyPacked(embedded, grid, mask, ctx); // [V, H]
    return tf.gather(output, tf.tensor1d(layout.lastTokens, 'int32')) as tf.Tensor2D; // [B, H]
  }
}
