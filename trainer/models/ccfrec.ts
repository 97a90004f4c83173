import { ValidationError } from '../../errors';
import { tf } from '../../infra/tf';
import type { Random } from '../../random';
import type { CcfrecConfig } from '../config';
import type { SequenceBatch } from '../data';
import { QFormer } from '../layers/crossAttention';
import { l2Normalize } from '../layers/dense';
import { INFERENCE, trainingContext, type ForwardContext } from '../layers/dropout';
import { ParamSet, type NamedWeight } from '../layers/params';
import { maskCodes } from '../masking';
import { sampleNegatives } from '../sampler';
import { globalCodeIds, validateSideInfo, type ItemSideInfo } from '../sideInfo';
import { TextPrior } from '../textPrior';
import { BaseRecommender } from './baseRecommender';
import { ITEM_TABLE_CHUNK, checkRows, type LossResult } from './contract';
import { crossEntropy, fullSoftmaxLoss, sampledSoftmaxLoss, symmetricInfoNce } from './losses';
import { SequenceEncoder, sequenceLayout, type SequenceLayout } from './sequenceEncoder';

/** Items per chunk when the whole catalog is encoded (the reference uses 1024). */
const ITEM_CHUNK = ITEM_TABLE_CHUNK;

/**
 * CCFRec (the reference implementation, in TF.js). Each item is its semantic code digits (as
 * learned code embeddings, the queries) cross-attending over its frozen text-field embeddings
 * (keys/values) in a Q-Former; the mean over its codes is the item vector fed to the causal
 * sequence transformer. Candidates are encoded as Q-Former mean + code-embedding mean.
 *
 * Code ids are global (`digit + level * codesPerLevel + 1`); id 0 is padding and the mask
 * token. Its embedding row is initialised like the others and never trained, as torch's
 * `padding_idx=0` does in the reference.
 */
export class CcfrecModel extends BaseRecommender {
  readonly modelType = 'ccfrec' as const;
  readonly itemCount: number;
  readonly hiddenSize: number;
  readonly weights: readonly NamedWeight[];
  /** `[N + 1, C]` global code ids on the host, row 0 = zeros. */
  private readonly codeIds: Int32Array;
  private readonly levels: number;
  /** levels * codesPerLevel: code ids run 1..codeCount. */
  private readonly codeCount: number;
  private readonly maskCode: tf.Variable; // [1, H] code 0, frozen
  private readonly codeRows: tf.Variable; // [codeCount, H] codes 1..codeCount
  private readonly textTables: tf.Tensor2D[]; // T x [N + 1, H], frozen inputs
  private readonly qformer: QFormer;
  private readonly encoder: SequenceEncoder;
  /** With `textPriorWeight > 0`: the prior added to every score, in training and at inference. */
  private readonly prior: TextPrior | undefined;

  constructor(
    readonly config: CcfrecConfig,
    sideInfo: ItemSideInfo,
    rng: Random | null,
  ) {
    super();
    validateSideInfo(sideInfo);
    const H = config.embeddingSize;
    for (const f of sideInfo.textFields) {
      if (f.dims !== H) {
        throw new ValidationError(
          `CCFRec: text field ${JSON.stringify(f.name)} has ${f.dims} dimensions, embeddingSize is ${H} (the text embeddings must be PCA-reduced to embeddingSize)`,
          { context: { field: `textFields.${f.name}` } },
        );
      }
    }
    this.itemCount = sideInfo.itemCount;
    this.hiddenSize = H;
    this.levels = sideInfo.codes.levels;
    this.codeCount = sideInfo.codes.levels * sideInfo.codes.codesPerLevel;
    this.codeIds = globalCodeIds(sideInfo.codes);

    const params = ParamSet.create(rng);
    const codes = params.child('codeEmbedding');
    this.maskCode = codes.normal('maskToken', [1, H], config.initializerRange, 'constant', false);
    this.codeRows = codes.normal('codes', [this.codeCount, H], config.initializerRange, 'embedding');
    this.qformer = new QFormer(params.child('qformer'), {
      nLayers: config.nLayersCross,
      nHeads: config.nHeads,
      hiddenSize: H,
      innerSize: config.innerSize,
      dropout: config.dropoutProbCross,
      layerNormEps: config.layerNormEps,
      initializerRange: config.initializerRange,
    });
    this.encoder = new SequenceEncoder(params.child('encoder'), {
      nLayers: config.nLayers,
      nHeads: config.nHeads,
      hiddenSize: H,
      innerSize: config.innerSize,
      dropout: config.dropoutProb,
      layerNormEps: config.layerNormEps,
      initializerRange: config.initializerRange,
      maxLength: config.maxHistoryLength,
    });
    this.weights = params.weights();
    this.textTables = sideInfo.textFields.map((f) => tf.tensor2d(f.table, [sideInfo.itemCount + 1, H]));
    this.prior = config.textPriorWeight > 0 ? new TextPrior(sideInfo, { weight: config.textPriorWeight, lastItems: config.textPriorLastItems, pooling: config.textPriorPooling }) : undefined;
  }

  protected override constants(): tf.Tensor[] {
    return this.textTables;
  }

  override dispose(): void {
    super.dispose();
    this.prior?.dispose();
  }

  /** Model cosines plus the text prior (when configured). `[B, N + 1]` */
  override scoreAllItems(batch: SequenceBatch, itemTable?: tf.Tensor2D): tf.Tensor2D {
    const prior = this.prior;
    if (!prior) return super.scoreAllItems(batch, itemTable);
    return tf.tidy(() => prior.fuse(super.scoreAllItems(batch, itemTable), batch));
  }

  /** All code embeddings, row 0 = the mask/padding token. `[codeCount + 1, H]` */
  private codeTable(): tf.Tensor2D {
    return tf.concat([this.maskCode, this.codeRows], 0) as tf.Tensor2D;
  }

  /** Global code ids of `items`, `[n * C]`. */
  private codesOf(items: Int32Array): Int32Array {
    const C = this.levels;
    const out = new Int32Array(items.length * C);
    for (let i = 0; i < items.length; i++) out.set(this.codeIds.subarray((items[i] as number) * C, (items[i] as number) * C + C), i * C);
    return out;
  }

  /**
   * The Q-Former over `n` items.
   * @param codes `[n * C]` global code ids (possibly masked)
   * @returns fused `[n, C, H]` and the code embeddings (queries) `[n, C, H]`
   */
  private fuse(items: Int32Array, codes: Int32Array, table: tf.Tensor2D, ctx: ForwardContext): { fused: tf.Tensor3D; queries: tf.Tensor3D } {
    const n = items.length;
    const H = this.hiddenSize;
    const queries = tf.reshape(tf.gather(table, tf.tensor1d(codes, 'int32')), [n, this.levels, H]) as tf.Tensor3D; // [n, C, H]
    const ids = tf.tensor1d(items, 'int32');
    const text = tf.stack(this.textTables.map((t) => tf.gather(t, ids)), 1) as tf.Tensor3D; // [n, T, H]
    return { fused: this.qformer.apply(queries, text, ctx), queries };
  }

  /** Candidate vectors as the reference's `encode_item`: fused mean + code-embedding mean. `[n, H]` */
  private candidates(items: Int32Array, table: tf.Tensor2D, ctx: ForwardContext): tf.Tensor2D {
    const { fused, queries } = this.fuse(items, this.codesOf(items), table, ctx);
    return tf.add(tf.mean(fused, 1), tf.mean(queries, 1)) as tf.Tensor2D;
  }

  /**
   * The reference's `forward`: sequence vectors `[B, H]` and the Q-Former outputs of the
   * non-padding history items `[V, C, H]` (what masked code modelling reads). The Q-Former runs
   * on those V items only: outputs at padding positions are never read in the reference either.
   */
  private forward(batch: SequenceBatch, layout: SequenceLayout, codes: Int32Array, table: tf.Tensor2D, ctx: ForwardContext): { sequences: tf.Tensor2D; fused: tf.Tensor3D } {
    const { fused } = this.fuse(layout.items, codes, table, ctx); // [V, C, H]
    const tokens = tf.mean(fused, 1) as tf.Tensor2D; // [V, H]
    return { sequences: this.encoder.apply(tokens, batch, layout, ctx), fused };
  }

  encodeSequences(batch: SequenceBatch): tf.Tensor2D {
    return tf.tidy(() => {
      const layout = sequenceLayout(batch);
      return this.forward(batch, layout, this.codesOf(layout.items), this.codeTable(), INFERENCE).sequences;
    });
  }

  computeLoss(batch: SequenceBatch, rng: Random): LossResult {
    const { negNum, tau, maskRatio, mlmWeight, clWeight } = this.config;
    const layout = sequenceLayout(batch);
    const codes = this.codesOf(layout.items); // [V * C]
    // Host-side draws first (masking, negatives), then the dropout masks in forward order.
    const needMasked = mlmWeight > 0 || clWeight > 0;
    const masked = needMasked ? maskCodes(codes, this.codeCount, maskRatio, rng) : undefined;
    const negatives = negNum >= this.itemCount ? undefined : sampleNegatives(this.itemCount, batch.targets, negNum, rng);
    const ctx = trainingContext(rng);
    const table = this.codeTable(); // [codeCount + 1, H]

    const original = this.forward(batch, layout, codes, table, ctx);
    const sequences = l2Normalize(original.sequences); // [B, H]
    // The text prior (fixed, no gradient) shifts the logits: the model learns the residual.
    const prior = this.prior ? tf.mul(this.prior.scores(batch), this.prior.settings.weight) : undefined; // [B, N + 1]
    let rec: tf.Scalar;
    if (negatives === undefined) {
      const all = Int32Array.from({ length: this.itemCount + 1 }, (_, i) => i);
      rec = fullSoftmaxLoss(sequences, l2Normalize(this.candidates(all, table, ctx)), batch.targets, tau, prior as tf.Tensor2D | undefined);
    } else {
      const items = new Int32Array(batch.size + negatives.length);
      items.set(batch.targets, 0);
      items.set(negatives, batch.size);
      const vectors = l2Normalize(this.candidates(items, table, ctx)); // [B + K, H]
      const positives = tf.slice(vectors, [0, 0], [batch.size, -1]) as tf.Tensor2D; // [B, H]
      const negs = tf.slice(vectors, [batch.size, 0], [-1, -1]) as tf.Tensor2D; // [K, H]
      let offsets: tf.Tensor2D | undefined;
      if (prior) {
        const at = Int32Array.from(batch.targets, (target, b) => b * (this.itemCount + 1) + target); // (b, target_b) in the flat [B * (N + 1)]
        const pos = tf.reshape(tf.gather(tf.reshape(prior, [-1]), tf.tensor1d(at, 'int32')), [batch.size, 1]); // [B, 1]
        const neg = tf.gather(prior, tf.tensor1d(negatives, 'int32'), 1); // [B, K]
        offsets = tf.concat([pos, neg], 1) as tf.Tensor2D; // [B, 1 + K]
      }
      rec = sampledSoftmaxLoss(sequences, positives, negs, tau, offsets);
    }

    let mlm = tf.scalar(0);
    let cl = tf.scalar(0);
    if (masked) {
      const view = this.forward(batch, layout, masked.codes, table, ctx);
      if (mlmWeight > 0 && masked.positions.length > 0) {
        const picked = tf.gather(tf.reshape(view.fused, [-1, this.hiddenSize]), tf.tensor1d(masked.positions, 'int32')); // [M, H]
        const logits = tf.div(tf.matMul(l2Normalize(picked), l2Normalize(table), false, true), tau) as tf.Tensor2D; // [M, codeCount + 1]
        mlm = crossEntropy(logits, masked.labels);
      }
      if (clWeight > 0) cl = symmetricInfoNce(sequences, view.sequences, tau);
    }
    const total = tf.addN([rec, tf.mul(mlm, mlmWeight), tf.mul(cl, clWeight)]) as tf.Scalar;
    return { total, parts: { rec, mlm, cl } };
  }

  itemTable(): tf.Tensor2D {
    return this.itemTableRows(0, this.itemCount + 1); // [N + 1, H]
  }

  itemTableRows(start: number, end: number): tf.Tensor2D {
    checkRows(start, end, this.itemCount);
    return tf.tidy(() => {
      const table = this.codeTable();
      return l2Normalize(this.overItems(start, end, (ids) => this.candidates(ids, table, INFERENCE)));
    });
  }

  /**
   * `rows` of items `start..end - 1`, computed in chunks on the grid of ITEM_CHUNK items (the same
   * products whatever the range, so the same numbers) and stacked. `[end - start, H]`
   */
  private overItems(start: number, end: number, rows: (ids: Int32Array) => tf.Tensor2D): tf.Tensor2D {
    const chunks: tf.Tensor2D[] = [];
    for (let from = start; from < end; ) {
      const to = Math.min(end, (Math.floor(from / ITEM_CHUNK) + 1) * ITEM_CHUNK);
      chunks.push(rows(Int32Array.from({ length: to - from }, (_, i) => from + i)));
      from = to;
    }
    return tf.concat(chunks, 0) as tf.Tensor2D;
  }

  /**
   * The history tokens of {@link forward} at inference for every item: the mean over its codes of
   * the Q-Former output. The Q-Former reads one item's own codes and text fields only (no mask, no
   * other item) and no dropout runs at inference, so a token depends on its item alone and the
   * table can be computed once per model. `[N + 1, H]`
   */
  tokenTable(): tf.Tensor2D {
    return tf.tidy(() => {
      const table = this.codeTable();
      return this.overItems(0, this.itemCount + 1, (ids) => tf.mean(this.fuse(ids, this.codesOf(ids), table, INFERENCE).fused, 1) as tf.Tensor2D); // [N + 1, H]
    });
  }
}
