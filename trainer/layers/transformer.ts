import { tf } from '../../infra/tf';
import { MultiHeadAttention, type PackedGrid } from './attention';
import type { ForwardContext } from './dropout';
import { FeedForward } from './feedForward';
import type { ParamSet } from './params';

/** The few numbers a transformer stack needs. */
export interface TransformerShape {
  readonly nLayers: number;
  readonly nHeads: number;
  readonly hiddenSize: number;
  readonly innerSize: number;
  readonly dropout: number;
  readonly layerNormEps: number;
  readonly initializerRange: number;
}

/** Value added to the attention scores of positions that must not be attended (the reference's -10000). */
export const MASKED_SCORE = -10000;

/** Self-attention then feed-forward (RecBole `TransformerLayer`). */
export class TransformerLayer {
  private readonly attention: MultiHeadAttention;
  private readonly feedForward: FeedForward;

  constructor(params: ParamSet, shape: TransformerShape) {
    this.attention = new MultiHeadAttention(params.child('attention'), {
      hiddenSize: shape.hiddenSize,
      nHeads: shape.nHeads,
      hiddenDropout: shape.dropout,
      attentionDropout: shape.dropout,
      layerNormEps: shape.layerNormEps,
      initializerRange: shape.initializerRange,
    });
    this.feedForward = new FeedForward(params.child('feedForward'), shape, shape.dropout);
  }

  /** `[N * L, H] -> [N * L, H]` on the full grid; `additiveMask` is `[N, 1, L, L]`. */
  apply(x: tf.Tensor2D, groups: { readonly n: number; readonly length: number }, additiveMask: tf.Tensor4D | undefined, ctx: ForwardContext): tf.Tensor2D {
    const { n, length } = groups;
    return this.feedForward.apply(this.attention.apply(x, x, { n, lq: length, lk: length }, additiveMask, ctx), ctx);
  }

  /** Packed tokens `[V, H] -> [V, H]` (see {@link MultiHeadAttention.applyPacked}); `additiveMask` is `[B, 1, L, L]`. */
  applyPacked(tokens: tf.Tensor2D, grid: PackedGrid, additiveMask: tf.Tensor4D, ctx: ForwardContext): tf.Tensor2D {
    return this.feedForward.apply(this.attention.applyPacked(tokens, grid, additiveMask, ctx), ctx);
  }
}

/** A stack of {@link TransformerLayer}s. */
export class TransformerEncoder {
  private readonly layers: TransformerLayer[];

  constructor(params: ParamSet, shape: TransformerShape) {
    this.layers = Array.from({ length: shape.nLayers }, (_, i) => new TransformerLayer(params.child(`layers.${i}`), shape));
  }

  /** `[N * L, H] -> [N * L, H]` on the full grid (output of the last layer). */
  apply(x: tf.Tensor2D, groups: { readonly n: number; readonly length: number }, additiveMask: tf.Tensor4D | undefined, ctx: ForwardContext): tf.Tensor2D {
    let h = x;
    for (const layer of this.layers) h = layer.apply(h, groups, additiveMask, ctx);
    return h;
  }

  /** Packed tokens `[V, H] -> [V, H]` (output of the last layer). */
  applyPacked(tokens: tf.Tensor2D, grid: PackedGrid, additiveMask: tf.Tensor4D, ctx: ForwardContext): tf.Tensor2D {
    let h = tokens;
    for (const layer of this.layers) h = layer.applyPacked(h, grid, additiveMask, ctx);
    return h;
  }
}

/**
 * The reference's `get_attention_mask` (unidirectional): query i may attend key j when j <= i and
 * item j is not padding; others get {@link MASKED_SCORE}. Built on the host from the batch's ids.
 *
 * @param items `[B * L]` item ids, 0 = padding
 * @returns `[B, 1, L, L]`
 */
export function causalPaddingMask(items: Int32Array, batchSize: number, maxLength: number): tf.Tensor4D {
  const L = maxLength;
  const values = new Float32Array(batchSize * L * L);
  for (let b = 0; b < batchSize; b++) {
    const base = b * L * L;
    for (let i = 0; i < L; i++) {
      for (let j = 0; j < L; j++) {
        values[base + i * L + j] = j <= i && items[b * L + j] !== 0 ? 0 : MASKED_SCORE;
      }
    }
  }
  return tf.tensor4d(values, [batchSize, 1, L, L]);
}
