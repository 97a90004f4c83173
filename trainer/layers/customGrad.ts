import { tf } from '../../infra/tf';

/** What `tf.customGrad` passes last to the forward function: keeps tensors for the gradient. */
export type SaveFn = (tensors: tf.Tensor[]) => void;
/** `tf.customGrad` with a usable signature (the declared one types every argument as a tensor or the save function). */
export function customGrad<T extends tf.Tensor>(
  f: (...args: Array<tf.Tensor | SaveFn>) => { value: T; gradFunc: (dy: T, saved: tf.Tensor[]) => tf.Tensor | tf.Tensor[] },
): (...args: tf.Tensor[]) => T {
  return tf.customGrad(f as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (...args: tf.Tensor[]) => T;
}

