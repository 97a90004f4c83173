import { tf } from '../../infra/tf';
import { l2Normalize, type SequenceBatch, type SequentialRecommender } from '../../trainer';
import { checkEncoderBatch, type UserEncoder } from './userEncoder';

/**
 * The TF.js engine: the model's own `encodeSequences` (no dropout) then L2 normalisation, in one
 * `tf.tidy`; only the host copy of the result leaves it. The model stays its owner's: dispose
 * does not dispose it.
 */
export class TfjsUserEncoder implements UserEncoder {
  readonly kind = 'tfjs' as const;
  readonly itemCount: number;
  readonly hiddenSize: number;
  readonly maxHistoryLength: number;

  constructor(private readonly model: SequentialRecommender) {
    this.itemCount = model.itemCount;
    this.hiddenSize = model.hiddenSize;
    this.maxHistoryLength = model.config.maxHistoryLength;
  }

  async encode(batch: SequenceBatch): Promise<Float32Array> {
    checkEncoderBatch(batch, this);
    const vectors = tf.tidy(() => l2Normalize(this.model.encodeSequences(batch))); // [B, H]
    try {
      return (await vectors.data()) as Float32Array;
    } finally {
      vectors.dispose();
    }
  }

  async dispose(): Promise<void> {
    // Nothing of its own: the model belongs to whoever loaded it.
  }
}
