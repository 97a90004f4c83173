import { tf } from '../../infra/tf';
import type { Random } from '../../random';

/**
 * How a forward pass runs. Training passes carry the seeded generator that draws every dropout
 * mask; inference passes have none and apply no dropout.
 */
export type ForwardContext = { readonly training: false } | { readonly training: true; readonly rng: Random };

export const INFERENCE: ForwardContext = { training: false };

/** A training context drawing from `rng`. */
export function trainingContext(rng: Random): ForwardContext {
  return { training: true, rng };
}

/**
 * Inverted-dropout multipliers: each entry is `1 / (1 - rate)` with probability `1 - rate`, else 0.
 * The bits come from a local sfc32 stream seeded with four words drawn from `rng` (so the masks
 * are a pure function of the caller's generator), run on int32 locals: calling
 * `Random.nextUint32` per element is about 10x slower. Two entries per 32-bit draw (16-bit
 * resolution: the keep probability is exact to 2^-16).
 */
export function dropoutMultipliers(size: number, rate: number, rng: Random): Float32Array {
  const out = new Float32Array(size);
  const scale = 1 / (1 - rate);
  const threshold = Math.round(rate * 65536);
  let a = rng.nextUint32() | 0;
  let b = rng.nextUint32() | 0;
  let c = rng.nextUint32() | 0;
  let d = rng.nextUint32() | 0;
  for (let i = 0; i < size; i += 2) {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    out[i] = (t & 0xffff) >= threshold ? scale : 0;
    if (i + 1 < size) out[i + 1] = t >>> 16 >= threshold ? scale : 0;
  }
  return out;
}

/** Dropout with masks from the context's generator; identity at inference or rate 0. */
export function dropout<T extends tf.Tensor>(x: T, rate: number, ctx: ForwardContext): T {
  if (!ctx.training || rate <= 0) return x;
  const mask = tf.tensor(dropoutMultipliers(x.size, rate, ctx.rng), x.shape, 'float32');
  return tf.mul(x, mask) as T;
}
