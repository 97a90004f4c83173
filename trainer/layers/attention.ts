import { tf } from '../../infra/tf';
import { Dense, LayerNorm } from './dense';
import { dropout, type ForwardContext } from './dropout';
import type { ParamSet } from './params';

/** What one attention block needs to know. */
export interface AttentionShape {
  readonly hiddenSize: number;
  readonly nHeads: number;
  readonly hiddenDropout: number;
  readonly attentionDropout: number;
  readonly layerNormEps: number;
  readonly initializerRange: number;
}

/**
 * Where the V non-padding tokens of a `[B, L]` batch sit (see {@link packedLayout}): the
 * position-wise parts of a transformer run on the `[V, H]` tokens only; the grid is rebuilt for
 * the attention scores alone.
 */
export interface PackedGrid {
  readonly batchSize: number;
  readonly maxLength: number;
  /** `[B * L]` row of each grid position in `[tokens; zeros]`: 0..V-1, or V for padding. */
  readonly placement: tf.Tensor1D;
  /** `[V]` flat grid position (b * L + l) of each token. */
  readonly positions: tf.Tensor1D;
}

/**
 * Multi-head attention with a residual and post-LayerNorm, as RecBole's / the reference's
 * `MultiHeadAttention`: `LN(dropout(W_o · dropout(softmax(QK^T / sqrt(d) + mask)) V) + query)`.
 */
export class MultiHeadAttention {
  private readonly query: Dense;
  private readonly key: Dense;
  private readonly value: Dense;
  private readonly output: Dense;
  private readonly norm: LayerNorm;
  private readonly headSize: number;

  constructor(
    params: ParamSet,
    private readonly shape: AttentionShape,
  ) {
    const { hiddenSize, nHeads, initializerRange } = shape;
    if (hiddenSize % nHeads !== 0) throw new Error(`hidden size ${hiddenSize} is not a multiple of ${nHeads} heads`);
    this.headSize = hiddenSize / nHeads;
    this.query = new Dense(params.child('query'), hiddenSize, hiddenSize, initializerRange);
    this.key = new Dense(params.child('key'), hiddenSize, hiddenSize, initializerRange);
    this.value = new Dense(params.child('value'), hiddenSize, hiddenSize, initializerRange);
    this.output = new Dense(params.child('output'), hiddenSize, hiddenSize, initializerRange);
    this.norm = new LayerNorm(params.child('norm'), hiddenSize, shape.layerNormEps);
  }

  /** `[N * len, H] -> [N, heads, len, d]` */
  private splitHeads(x: tf.Tensor, n: number, len: number): tf.Tensor4D {
    return tf.transpose(tf.reshape(x, [n, len, this.shape.nHeads, this.headSize]), [0, 2, 1, 3]) as tf.Tensor4D;
  }

  /** Scaled dot-product attention on head grids; returns `[N * Lq, H]`. */
  private attend(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, additiveMask: tf.Tensor4D | undefined, ctx: ForwardContext): tf.Tensor2D {
    const [n, , lq] = q.shape;
    let scores = tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(this.headSize)) as tf.Tensor4D; // [N, heads, Lq, Lk]
    if (additiveMask) scores = tf.add(scores, additiveMask);
    const probs = dropout(tf.softmax(scores), this.shape.attentionDropout, ctx); // [N, heads, Lq, Lk]
    const context = tf.matMul(probs, v); // [N, heads, Lq, d]
    return tf.reshape(tf.transpose(context, [0, 2, 1, 3]), [n * lq, this.shape.hiddenSize]) as tf.Tensor2D; // [N * Lq, H]
  }

  /**
   * Attention of N groups of Lq queries over their own Lk keys/values, on flattened tokens.
   *
   * @param queries `[N * Lq, H]`
   * @param keysValues `[N * Lk, H]`
   * @param additiveMask `[N, 1, Lq, Lk]` (0 = attend, -10000 = do not), or undefined for none
   * @returns `[N * Lq, H]`
   */
  apply(
    queries: tf.Tensor2D,
    keysValues: tf.Tensor2D,
    groups: { readonly n: number; readonly lq: number; readonly lk: number },
    additiveMask: tf.Tensor4D | undefined,
    ctx: ForwardContext,
  ): tf.Tensor2D {
    const { n, lq, lk } = groups;
    let context: tf.Tensor2D; // [N * Lq, H]
    if (lk === 1 && !additiveMask) {
      // One key: softmax over it is exactly 1 whatever Q and K are (their gradient is 0 in the
      // reference too), so the output is dropout(1) * V. Same values, same dropout draws, no Q/K work.
      const v = this.splitHeads(this.value.apply(keysValues), n, 1); // [N, heads, 1, d]
      const probs = dropout(tf.ones([n, this.shape.nHeads, lq, 1]), this.shape.attentionDropout, ctx); // [N, heads, Lq, 1]
      context = tf.reshape(tf.transpose(tf.mul(probs, v), [0, 2, 1, 3]), [n * lq, this.shape.hiddenSize]) as tf.Tensor2D;
    } else {
      const q = this.splitHeads(this.query.apply(queries), n, lq); // [N, heads, Lq, d]
      const k = this.splitHeads(this.key.apply(keysValues), n, lk); // [N, heads, Lk, d]
      const v = this.splitHeads(this.value.apply(keysValues), n, lk); // [N, heads, Lk, d]
      context = this.attend(q, k, v, additiveMask, ctx);
    }
    const out = dropout(this.output.apply(context), this.shape.hiddenDropout, ctx); // [N * Lq, H]
    return this.norm.apply(tf.add(out, queries)) as tf.Tensor2D;
  }

  /**
   * Self-attention over packed tokens: the same result as {@link apply} on the `[B * L, H]` grid
   * at every non-padding position (padding keys are masked out, padding queries never read),
   * with the projections, dropout and LayerNorm run on the V tokens only.
   *
   * @param tokens `[V, H]`
   * @param additiveMask `[B, 1, L, L]`
   * @returns `[V, H]`
   */
  applyPacked(tokens: tf.Tensor2D, grid: PackedGrid, additiveMask: tf.Tensor4D, ctx: ForwardContext): tf.Tensor2D {
    const { batchSize: B, maxLength: L } = grid;
    const H = this.shape.hiddenSize;
    const zero = tf.zeros([1, H]);
    const toGrid = (x: tf.Tensor): tf.Tensor4D =>
      this.splitHeads(tf.gather(tf.concat([x, zero], 0), grid.placement), B, L); // [B, heads, L, d]
    const q = toGrid(this.query.apply(tokens));
    const k = toGrid(this.key.apply(tokens));
    const v = toGrid(this.value.apply(tokens));
    const context = tf.gather(this.attend(q, k, v, additiveMask, ctx), grid.positions); // [V, H]
    const out = dropout(this.output.apply(context), this.shape.hiddenDropout, ctx); // [V, H]
    return this.norm.apply(tf.add(out, tokens)) as tf.Tensor2D;
  }
}
