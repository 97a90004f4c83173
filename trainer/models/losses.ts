import { tf } from '../../infra/tf';
import { customGrad, type SaveFn } from '../layers/customGrad';
import { l2Normalize } from '../layers/dense';

/**
 * The losses of the reference, on plain tensors. Inputs named `normalized` must already be
 * L2-normalised; logits are cosine similarities divided by the temperature `tau`.
 */

/**
 * Mean softmax cross-entropy of `logits [M, K]` against integer `labels [M]`, with the
 * closed-form gradient `(softmax - onehot) / M` (a handful of kernels instead of a gather and
 * its scatter over M x K).
 */
export function crossEntropy(logits: tf.Tensor2D, labels: Int32Array): tf.Scalar {
  const [m, k] = logits.shape;
  const oneHot = tf.oneHot(tf.tensor1d(labels, 'int32'), k, 1, 0, 'float32'); // [M, K]
  const op = customGrad<tf.Scalar>((...args) => {
    const [x, save] = args as [tf.Tensor2D, SaveFn];
    const logProbs = tf.logSoftmax(x); // [M, K]
    // oneHot is saved too: the gradient runs after the forward pass's tensors are released.
    save([logProbs, oneHot]);
    return {
      value: tf.neg(tf.div(tf.sum(tf.mul(logProbs, oneHot)), m)) as tf.Scalar,
      gradFunc: (dy, saved) => tf.mul(tf.sub(tf.exp(saved[0] as tf.Tensor), saved[1] as tf.Tensor), tf.div(dy, m)),
    };
  });
  return op(logits);
}

/**
 * Sampled-softmax recommendation loss: for each sequence, its positive against the batch's shared
 * negatives; cross-entropy with the positive as class 0.
 *
 * @param sequences `[B, H]` normalised
 * @param positives `[B, H]` normalised, row b = target of sequence b
 * @param negatives `[K, H]` normalised
 * @param offsets `[B, 1 + K]` added to the cosines before the temperature (a fixed prior), optional
 */
export function sampledSoftmaxLoss(sequences: tf.Tensor2D, positives: tf.Tensor2D, negatives: tf.Tensor2D, tau: number, offsets?: tf.Tensor2D): tf.Scalar {
  const pos = tf.sum(tf.mul(sequences, positives), -1, true); // [B, 1]
  const neg = tf.matMul(sequences, negatives, false, true); // [B, K]
  const scores = tf.concat([pos, neg], 1); // [B, 1 + K]
  const logits = tf.div(offsets ? tf.add(scores, offsets) : scores, tau) as tf.Tensor2D; // [B, 1 + K]
  return crossEntropy(logits, new Int32Array(sequences.shape[0]));
}

/** Score that removes the padding item from a full softmax. */
const PADDING_LOGIT = -1e9;

/**
 * Full-softmax recommendation loss over all items 1..N (padding excluded).
 *
 * @param sequences `[B, H]` normalised
 * @param table `[N + 1, H]` normalised candidate vectors
 * @param offsets `[B, N + 1]` added to the cosines before the temperature (a fixed prior), optional
 */
export function fullSoftmaxLoss(sequences: tf.Tensor2D, table: tf.Tensor2D, targets: Int32Array, tau: number, offsets?: tf.Tensor2D): tf.Scalar {
  const n1 = table.shape[0];
  const padding = new Float32Array(n1);
  padding[0] = PADDING_LOGIT;
  const cosines = tf.matMul(sequences, table, false, true); // [B, N + 1]
  const scores = offsets ? tf.add(cosines, offsets) : cosines;
  const logits = tf.add(tf.div(scores, tau), tf.tensor2d(padding, [1, n1])) as tf.Tensor2D; // [B, N + 1]
  return crossEntropy(logits, targets);
}

/**
 * InfoNCE between two views of the same batch (in-batch negatives), averaged over both
 * directions. Inputs need not be normalised.
 *
 * @param a `[B, H]`
 * @param b `[B, H]`
 */
export function symmetricInfoNce(a: tf.Tensor2D, b: tf.Tensor2D, tau: number): tf.Scalar {
  const n = a.shape[0];
  const logits = tf.div(tf.matMul(l2Normalize(a), l2Normalize(b), false, true), tau) as tf.Tensor2D; // [B, B]
  const diagonal = Int32Array.from({ length: n }, (_, i) => i);
  return tf.div(tf.add(crossEntropy(logits, diagonal), crossEntropy(tf.transpose(logits) as tf.Tensor2D, diagonal)), 2) as tf.Scalar;
}

