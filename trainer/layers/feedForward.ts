import { tf } from '../../infra/tf';
import { Dense, LayerNorm, gelu } from './dense';
import { dropout, type ForwardContext } from './dropout';
import type { ParamSet } from './params';

/** Position-wise feed-forward block with residual and post-LayerNorm: `LN(dropout(W2 gelu(W1 x)) + x)`. */
export class FeedForward {
  private readonly inner: Dense;
  private readonly outer: Dense;
  private readonly norm: LayerNorm;

  constructor(
    params: ParamSet,
    shape: { hiddenSize: number; innerSize: number; layerNormEps: number; initializerRange: number },
    private readonly dropoutRate: number,
  ) {
    this.inner = new Dense(params.child('inner'), shape.hiddenSize, shape.innerSize, shape.initializerRange);
    this.outer = new Dense(params.child('outer'), shape.innerSize, shape.hiddenSize, shape.initializerRange);
    this.norm = new LayerNorm(params.child('norm'), shape.hiddenSize, shape.layerNormEps);
  }

  /** `[..., H] -> [..., H]` */
  apply<T extends tf.Tensor>(x: T, ctx: ForwardContext): T {
    const hidden = gelu(this.inner.apply(x)); // [..., inner]
    const out = dropout(this.outer.apply(hidden), this.dropoutRate, ctx); // [..., H]
    return this.norm.apply(tf.add(out, x)) as T;
  }
}
