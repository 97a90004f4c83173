import { tf } from '../../infra/tf';
import { customGrad, type SaveFn } from './customGrad';
import type { ParamSet } from './params';

/** A fully connected layer `x W + b` on the last axis (torch `nn.Linear`): W ~ N(0, std), b = 0. */
export class Dense {
  readonly kernel: tf.Variable; // [in, out]
  readonly bias: tf.Variable; // [out]

  constructor(
    params: ParamSet,
    readonly inputSize: number,
    readonly outputSize: number,
    std: number,
  ) {
    this.kernel = params.normal('kernel', [inputSize, outputSize], std, 'kernel');
    this.bias = params.zeros('bias', [outputSize], 'bias');
  }

  /** `[..., in] -> [..., out]` (no reshapes for 2-D input). */
  apply(x: tf.Tensor): tf.Tensor {
    if (x.rank === 2) return tf.fused.matMul({ a: x as tf.Tensor2D, b: this.kernel as tf.Tensor2D, bias: this.bias });
    const shape = x.shape;
    const flat = tf.reshape(x, [-1, this.inputSize]) as tf.Tensor2D; // [M, in]
    const y = tf.fused.matMul({ a: flat, b: this.kernel as tf.Tensor2D, bias: this.bias }); // [M, out]
    return tf.reshape(y, [...shape.slice(0, -1), this.outputSize]);
  }
}

/**
 * LayerNorm over the last axis with a learned scale (ones) and shift (zeros), with a hand-written
 * gradient (about a third of the kernels autodiff would record).
 */
export class LayerNorm {
  readonly gamma: tf.Variable; // [H]
  readonly beta: tf.Variable; // [H]
  private readonly op: (x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor) => tf.Tensor;

  constructor(params: ParamSet, size: number, eps: number) {
    this.gamma = params.ones('gamma', [size], 'norm');
    this.beta = params.zeros('beta', [size], 'norm');
    this.op = customGrad((...args) => {
      const [x, gamma, beta, save] = args as [tf.Tensor, tf.Tensor, tf.Tensor, SaveFn];
      const { mean, variance } = tf.moments(x, -1, true); // [..., 1]
      const inv = tf.rsqrt(tf.add(variance, eps)); // [..., 1]
      const normed = tf.mul(tf.sub(x, mean), inv); // [..., H]
      save([normed, inv, gamma]);
      return {
        value: tf.add(tf.mul(normed, gamma), beta),
        gradFunc: (dy, saved) => {
          const [xhat, r, g0] = saved as [tf.Tensor, tf.Tensor, tf.Tensor];
          const g = tf.mul(dy, g0); // [..., H]
          const centred = tf.sub(g, tf.mean(g, -1, true));
          const dx = tf.mul(tf.sub(centred, tf.mul(xhat, tf.mean(tf.mul(g, xhat), -1, true))), r);
          const axes = Array.from({ length: dy.rank - 1 }, (_, i) => i);
          return [dx, tf.sum(tf.mul(dy, xhat), axes), tf.sum(dy, axes)];
        },
      };
    });
  }

  /** `[..., H] -> [..., H]` */
  apply(x: tf.Tensor): tf.Tensor {
    return this.op(x, this.gamma, this.beta);
  }
}

const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

const geluOp = customGrad((...args) => {
  const [x, save] = args as [tf.Tensor, SaveFn];
  const cdf = tf.mul(tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1), 0.5); // Phi(x)
  save([x, cdf]);
  return {
    value: tf.mul(x, cdf),
    gradFunc: (dy, saved) => {
      const [x0, phi] = saved as [tf.Tensor, tf.Tensor];
      const pdf = tf.mul(tf.exp(tf.mul(tf.square(x0), -0.5)), INV_SQRT_2PI); // phi(x)
      return tf.mul(dy, tf.add(phi, tf.mul(x0, pdf)));
    },
  };
});

/** Exact GELU, `x * 0.5 * (1 + erf(x / sqrt(2)))`, as the reference computes it (hand-written gradient). */
export function gelu(x: tf.Tensor): tf.Tensor {
  return geluOp(x);
}

/** `x / max(||x||, 1e-12)` on the last axis (torch `F.normalize`). */
export function l2Normalize<T extends tf.Tensor>(x: T): T {
  const norm = tf.sqrt(tf.sum(tf.square(x), -1, true));
  return tf.div(x, tf.maximum(norm, 1e-12)) as T;
}

