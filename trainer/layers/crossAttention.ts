import { tf } from '../../infra/tf';
import { MultiHeadAttention } from './attention';
import type { ForwardContext } from './dropout';
import { FeedForward } from './feedForward';
import type { ParamSet } from './params';
import type { TransformerShape } from './transformer';

/**
 * One Q-Former layer (the reference's `CrossAttTransformerLayer`): self-attention among the
 * queries, cross-attention from the queries to the keys/values, then feed-forward; each with a
 * residual and post-LayerNorm. No masks: every item has all its codes and all its text fields.
 */
export class CrossAttentionLayer {
  private readonly selfAttention: MultiHeadAttention;
  private readonly crossAttention: MultiHeadAttention;
  private readonly feedForward: FeedForward;

  constructor(params: ParamSet, shape: TransformerShape) {
    const attention = {
      hiddenSize: shape.hiddenSize,
      nHeads: shape.nHeads,
      hiddenDropout: shape.dropout,
      attentionDropout: shape.dropout,
      layerNormEps: shape.layerNormEps,
      initializerRange: shape.initializerRange,
    };
    this.selfAttention = new MultiHeadAttention(params.child('selfAttention'), attention);
    this.crossAttention = new MultiHeadAttention(params.child('crossAttention'), attention);
    this.feedForward = new FeedForward(params.child('feedForward'), shape, shape.dropout);
  }

  /**
   * @param queries `[N * C, H]` (each item's C code embeddings)
   * @param keysValues `[N * T, H]` (its T text-field embeddings)
   * @returns `[N * C, H]`
   */
  apply(queries: tf.Tensor2D, keysValues: tf.Tensor2D, groups: { readonly n: number; readonly c: number; readonly t: number }, ctx: ForwardContext): tf.Tensor2D {
    const { n, c, t } = groups;
    const attended = this.selfAttention.apply(queries, queries, { n, lq: c, lk: c }, undefined, ctx);
    const crossed = this.crossAttention.apply(attended, keysValues, { n, lq: c, lk: t }, undefined, ctx);
    return this.feedForward.apply(crossed, ctx);
  }
}

/** The Q-Former: a stack of {@link CrossAttentionLayer}s over the same keys/values (the reference's `CrossAttTransformer`). */
export class QFormer {
  private readonly layers: CrossAttentionLayer[];

  constructor(params: ParamSet, shape: TransformerShape) {
    this.layers = Array.from({ length: shape.nLayers }, (_, i) => new CrossAttentionLayer(params.child(`layers.${i}`), shape));
  }

  /** `[N, C, H]` queries, `[N, T, H]` keys/values -> `[N, C, H]` (output of the last layer). */
  apply(queries: tf.Tensor3D, keysValues: tf.Tensor3D, ctx: ForwardContext): tf.Tensor3D {
    const [n, c, h] = queries.shape;
    const t = keysValues.shape[1];
    const kv = tf.reshape(keysValues, [n * t, h]) as tf.Tensor2D;
    let x = tf.reshape(queries, [n * c, h]) as tf.Tensor2D;
    for (const layer of this.layers) x = layer.apply(x, kv, { n, c, t }, ctx);
    return tf.reshape(x, [n, c, h]) as tf.Tensor3D;
  }
}
