import { tf } from '../../infra/tf';
import type { Random } from '../../random';
import type { SasrecConfig } from '../config';
import type { SequenceBatch } from '../data';
import { l2Normalize } from '../layers/dense';
import { INFERENCE, trainingContext, type ForwardContext } from '../layers/dropout';
import { ParamSet, type NamedWeight } from '../layers/params';
import { sampleNegatives } from '../sampler';
import { BaseRecommender } from './baseRecommender';
import { checkRows, type LossResult } from './contract';
import { fullSoftmaxLoss, sampledSoftmaxLoss } from './losses';
import { SequenceEncoder, sequenceLayout } from './sequenceEncoder';

/**
 * SASRec (Kang & McAuley 2018) as the baseline: learned item-ID embeddings into the same
 * sequence encoder as CCFRec, trained with the same recommendation loss (cosine / tau, shared
 * sampled negatives or full softmax) so that the comparison differs only in the item side.
 * The item embedding table doubles as the candidate table.
 */
export class SasrecModel extends BaseRecommender {
  readonly modelType = 'sasrec' as const;
  readonly hiddenSize: number;
  readonly weights: readonly NamedWeight[];
  private readonly itemEmbedding: tf.Variable; // [N + 1, H]
  private readonly encoder: SequenceEncoder;

  constructor(
    readonly config: SasrecConfig,
    readonly itemCount: number,
    rng: Random | null,
  ) {
    super();
    const params = ParamSet.create(rng);
    this.hiddenSize = config.embeddingSize;
    this.itemEmbedding = params.normal('itemEmbedding', [itemCount + 1, config.embeddingSize], config.initializerRange, 'embedding');
    this.encoder = new SequenceEncoder(params.child('encoder'), {
      nLayers: config.nLayers,
      nHeads: config.nHeads,
      hiddenSize: config.embeddingSize,
      innerSize: config.innerSize,
      dropout: config.dropoutProb,
      layerNormEps: config.layerNormEps,
      initializerRange: config.initializerRange,
      maxLength: config.maxHistoryLength,
    });
    this.weights = params.weights();
  }

  private encode(batch: SequenceBatch, ctx: ForwardContext): tf.Tensor2D {
    const layout = sequenceLayout(batch);
    const tokens = tf.gather(this.itemEmbedding, tf.tensor1d(layout.items, 'int32')) as tf.Tensor2D; // [V, H]
    return this.encoder.apply(tokens, batch, layout, ctx); // [B, H]
  }

  encodeSequences(batch: SequenceBatch): tf.Tensor2D {
    return tf.tidy(() => this.encode(batch, INFERENCE));
  }

  computeLoss(batch: SequenceBatch, rng: Random): LossResult {
    const { negNum, tau } = this.config;
    // Host-side draws first, so the stream of random numbers does not depend on the backend.
    const negatives = negNum >= this.itemCount ? undefined : sampleNegatives(this.itemCount, batch.targets, negNum, rng);
    const sequences = l2Normalize(this.encode(batch, trainingContext(rng))); // [B, H]
    let rec: tf.Scalar;
    if (negatives === undefined) {
      rec = fullSoftmaxLoss(sequences, l2Normalize(this.itemEmbedding as tf.Tensor2D), batch.targets, tau);
    } else {
      const positives = l2Normalize(tf.gather(this.itemEmbedding, tf.tensor1d(batch.targets, 'int32')) as tf.Tensor2D); // [B, H]
      const negs = l2Normalize(tf.gather(this.itemEmbedding, tf.tensor1d(negatives, 'int32')) as tf.Tensor2D); // [K, H]
      rec = sampledSoftmaxLoss(sequences, positives, negs, tau);
    }
    return { total: rec, parts: { rec } };
  }

  itemTable(): tf.Tensor2D {
    return tf.tidy(() => l2Normalize(this.itemEmbedding as tf.Tensor2D));
  }

  itemTableRows(start: number, end: number): tf.Tensor2D {
    checkRows(start, end, this.itemCount);
    return tf.tidy(() => l2Normalize(tf.slice(this.itemEmbedding, [start, 0], [end - start, -1]) as tf.Tensor2D));
  }

  /** The item embeddings themselves (a copy). `[N + 1, H]` */
  tokenTable(): tf.Tensor2D {
    return tf.clone(this.itemEmbedding) as tf.Tensor2D;
  }
}
