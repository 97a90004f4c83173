import { ValidationError } from '../../errors';
import { MASKED_SCORE, type WeightValues } from '../../trainer';
import { ONNX_INT32, ONNX_INT64, OnnxGraphBuilder, type OnnxValue } from './onnxGraph';

/**
 * The user encoder as an ONNX graph: the trainer's `SequenceEncoder` at inference (item token +
 * position embedding -> LayerNorm -> causal post-LN transformer -> output at each history's last
 * item), then L2 normalisation, computed op for op as trainer/layers does it.
 *
 * - Input `item_ids` int32 `[batch, sequence]`, sequence <= L (the model's maxHistoryLength):
 *   histories left-aligned, 0 = padding (a batch's `items` as they are, or with trailing padding
 *   columns cut: the engine runs each group of rows at its own longest length). Lengths are not
 *   an input: row b's length is its count of non-zero ids (left-aligned rows, checked by the
 *   engine), so ids and lengths cannot disagree. The position embeddings are sliced to `sequence`.
 * - Output `user_vectors` float32 `[batch, H]`, L2-normalised (`x / max(|x|, 1e-12)`).
 * - Self-attention is ONNX Runtime's fused `Attention` (domain `com.microsoft`, version 1): the
 *   Q, K, V projections as one `[H, 3H]` product, scaled scores, the masks, softmax and the heads'
 *   contexts in one node per layer, where the standard ops took ~18 (projections, reshapes,
 *   transposes, mask arithmetic). Layout 3: 39 nodes per run instead of 74 on the 100,000-item
 *   benchmark's encoder, one history in 45-48 us instead of 57-62 (ONNX Runtime 1.30, 2 vCPUs;
 *   133-143 us instead of 158-161 with 8 MB of other memory touched between runs, as between
 *   requests). The graph then runs on ONNX Runtime only (what serving runs it with).
 * - Only each row's last position reaches the output, so in the last layer the attention's
 *   context and input are taken there, and its output projection and feed-forward run on
 *   `[batch, H]` rows (where ONNX Runtime fuses MatMul + Add into Gemm). The layers before it run
 *   at every position, their keys and values being needed. Same vectors as the whole grid (layout 1).
 * - Opset 17 (IR version 8, its pair in ONNX's version table): it has LayerNormalization (17) and
 *   Erf (13); GELU is built from Erf, `x * (erf(x / sqrt 2) + 1) * 0.5`, the form ONNX Runtime's
 *   optimizer fuses (with the bias before it) into one BiasGelu node (the Gelu op needs opset 20);
 *   trainer/layers/dense.ts multiplies by sqrt(1/2) instead, a difference of rounding.
 * - Attention mask: query i attends key j when j <= i (`unidirectional`) and j < the row's length
 *   (`mask_index`: left-aligned rows, so exactly the keys whose id is not 0), else the trainer's
 *   additive MASKED_SCORE (-10000, finite, `mask_filter_value`): a row always has its own first
 *   item to attend (lengths are >= 1) and a fully masked row would give a uniform softmax, never
 *   NaN (no -Infinity).
 * - The token table (item id -> the vector it enters the encoder with: SASRec's embeddings,
 *   CCFRec's Q-Former code means, see `tokenTable()`) is an initializer: one Gather per history.
 *   A stored encoder keeps it outside the graph, as ONNX external data (writeOnnxEncoder).
 * - Padding positions run through the layers before the last like the grid version of the
 *   trainer's attention (the trainer packs them out); they are masked as keys and never gathered,
 *   so no valid position reads them.
 */

/** The graph layout {@link buildEncoderGraph} builds (the manifest's `graph`; 1: every layer at every position; 2: the last layer at the last position, standard ops only; 3: with the fused Attention). */
export const ENCODER_GRAPH_VERSION = 3;
/** ONNX Runtime's contrib operator domain (the fused Attention op). */
export const CONTRIB_DOMAIN = 'com.microsoft';
export const ENCODER_INPUT = 'item_ids';
/** The initializer holding the token table (stored as external data by writeOnnxEncoder). */
export const ENCODER_TOKEN_TABLE = 'token_table';
export const ENCODER_OUTPUT = 'user_vectors';
export const ENCODER_OPSET = 17;
export const ENCODER_IR_VERSION = 8;

/** The numbers the graph is built from (a model's sequence-encoder settings). */
export interface EncoderGraphShape {
  /** N: the token table has N + 1 rows. */
  readonly itemCount: number;
  /** H */
  readonly hiddenSize: number;
  readonly nHeads: number;
  readonly nLayers: number;
  readonly innerSize: number;
  readonly layerNormEps: number;
  /** L: the longest input sequence, the rows of the position embedding. */
  readonly maxHistoryLength: number;
}

/** Weights of the sequence encoder by checkpoint name (`encoder.` + the trainer's names). */
type Weights = ReadonlyMap<string, WeightValues>;

function weightOf(weights: Weights, name: string, shape: readonly number[]): Float32Array {
  const w = weights.get(name);
  if (!w) throw new ValidationError(`onnx export: the model has no weight ${name} (is it a SASRec or CCFRec sequence encoder?)`, { context: { field: name } });
  if (w.shape.length !== shape.length || w.shape.some((d, i) => d !== shape[i])) {
    throw new ValidationError(`onnx export: weight ${name} has shape [${w.shape.join(', ')}], the encoder settings give [${shape.join(', ')}]`, { context: { field: name } });
  }
  return w.values;
}

/** Builds the graph's nodes and initializers; `encode` gives the ModelProto bytes. */
export function buildEncoderGraph(shape: EncoderGraphShape, weights: Weights, tokenTable: Float32Array): OnnxGraphBuilder {
  const { itemCount: N, hiddenSize: H, nHeads, nLayers, innerSize: I, layerNormEps: eps, maxHistoryLength: L } = shape;
  if (H % nHeads !== 0) throw new ValidationError(`onnx export: hidden size ${H} is not a multiple of ${nHeads} heads`);
  if (!Number.isInteger(nLayers) || nLayers < 1) throw new ValidationError(`onnx export: the encoder needs at least one transformer layer, got ${nLayers}`);
  if (tokenTable.length !== (N + 1) * H) {
    throw new ValidationError(`onnx export: the token table holds ${tokenTable.length} values, [N + 1, H] = [${N + 1}, ${H}] needs ${(N + 1) * H}`);
  }
  const g = new OnnxGraphBuilder();
  const w = (name: string, dims: readonly number[]): OnnxValue => g.floats(name, dims, weightOf(weights, `encoder.${name}`, dims));
  const layerNorm = (x: OnnxValue, prefix: string): OnnxValue =>
    g.op('LayerNormalization', [x, w(`${prefix}.gamma`, [H]), w(`${prefix}.beta`, [H])], { axis: { int: -1 }, epsilon: { float: eps } }, `${prefix}.out`);
  const dense = (x: OnnxValue, prefix: string, inSize: number, outSize: number): OnnxValue =>
    g.op('Add', [g.op('MatMul', [x, w(`${prefix}.kernel`, [inSize, outSize])]), w(`${prefix}.bias`, [outSize])], {}, `${prefix}.out`); // [B, S, out] or [B, out]

  // S = the input's sequence length (<= L); B, S below.
  const ids = g.input(ENCODER_INPUT, 'int32', ['batch', 'sequence']); // [B, S]
  const S = g.op('Slice', [g.op('Shape', [ids]), g.int64s('start_1', [1], [1]), g.int64s('end_2', [1], [2])], {}, 'sequence'); // [1] = (S)
  const zero = g.int64s('start_0', [1], [0]);
  // Embedding: token + position, LayerNorm (dropout is off at inference).
  const tokens = g.op('Gather', [g.floats(ENCODER_TOKEN_TABLE, [N + 1, H], tokenTable), ids], { axis: { int: 0 } }, 'tokens'); // [B, S, H]
  const positionTable = g.floats('encoder.positionEmbedding', [L, H], weightOf(weights, 'encoder.positionEmbedding', [L, H])); // [L, H]
  const positions = g.op('Slice', [positionTable, zero, S, zero], {}, 'positions'); // [S, H]
  let x = layerNorm(g.op('Add', [tokens, positions], {}, 'positioned'), 'norm'); // [B, S, H]

  // Row lengths (count of non-zero ids; rows are left-aligned) and each row's last position.
  const valid = g.op('Not', [g.op('Equal', [ids, g.int32s('zero_id', [], [0])])], {}, 'valid'); // [B, S] bool
  const lengths = g.op('ReduceSum', [g.op('Cast', [valid], { to: { int: ONNX_INT32 } }), g.int64s('axis_1', [1], [1])], { keepdims: { int: 0 } }, 'lengths'); // [B] int32
  const last = g.op('Unsqueeze', [g.op('Sub', [g.op('Cast', [lengths], { to: { int: ONNX_INT64 } }), g.int64s('one_i64', [], [1])]), g.int64s('axis_1b', [1], [1])], {}, 'last_position'); // [B, 1]

  // Multi-head self-attention as ONNX Runtime's fused Attention (contrib domain): the Q, K, V
  // projections in one [H, 3H] product, scores scaled by 1/sqrt(d), keys at or after a row's length
  // masked (mask_index = lengths: right padding) and keys after the query masked (unidirectional),
  // both with the trainer's additive MASKED_SCORE, softmax, and the heads' contexts concatenated:
  // [B, S, H], before the output projection.
  const attention = (x: OnnxValue, p: string): OnnxValue => {
    const kernels = new Float32Array(H * 3 * H);
    const bias = new Float32Array(3 * H);
    (['query', 'key', 'value'] as const).forEach((name, part) => {
      const kernel = weightOf(weights, `encoder.${p}.attention.${name}.kernel`, [H, H]);
      for (let r = 0; r < H; r++) kernels.set(kernel.subarray(r * H, (r + 1) * H), r * 3 * H + part * H);
      bias.set(weightOf(weights, `encoder.${p}.attention.${name}.bias`, [H]), part * H);
    });
    return g.domainOp(
      CONTRIB_DOMAIN,
      1,
      'Attention',
      [x, g.floats(`${p}.attention.qkv.kernel`, [H, 3 * H], kernels), g.floats(`${p}.attention.qkv.bias`, [3 * H], bias), lengths],
      { num_heads: { int: nHeads }, unidirectional: { int: 1 }, mask_filter_value: { float: MASKED_SCORE } },
      `${p}.attention.context`,
    );
  };

  const sqrt2 = g.floats('sqrt_2', [], [Math.SQRT2]);
  const one = g.floats('one', [], [1]);
  const half = g.floats('half', [], [0.5]);
  // Exact (erf) GELU as `x * (erf(x / sqrt 2) + 1) * 0.5`: the form ONNX Runtime's optimizer fuses
  // (with the bias Add before it) into one BiasGelu node.
  const gelu = (inner: OnnxValue, prefix: string): OnnxValue =>
    g.op('Mul', [g.op('Mul', [inner, g.op('Add', [g.op('Erf', [g.op('Div', [inner, sqrt2])]), one])]), half], {}, `${prefix}.gelu`);
  // Feed-forward with residual and post-LayerNorm, on [B, S, H] or [B, H].
  const feedForward = (attended: OnnxValue, p: string): OnnxValue => {
    const inner = gelu(dense(attended, `${p}.feedForward.inner`, H, I), `${p}.feedForward`);
    return layerNorm(g.op('Add', [dense(inner, `${p}.feedForward.outer`, I, H), attended]), `${p}.feedForward.norm`);
  };

  for (let layer = 0; layer < nLayers - 1; layer++) {
    const p = `transformer.layers.${layer}`;
    // Attention, residual, post-LayerNorm, feed-forward: at every position (the next layer's keys and values).
    const attended = layerNorm(g.op('Add', [dense(attention(x, p), `${p}.attention.output`, H, H), x]), `${p}.attention.norm`); // [B, S, H]
    x = feedForward(attended, p); // [B, S, H]
  }

  // The last layer: only each row's last position reaches the output, so after the attention its
  // context and input are taken there, and the output projection and feed-forward run on [B, H].
  const p = `transformer.layers.${nLayers - 1}`;
  const contextLast = g.op('GatherND', [attention(x, p), last], { batch_dims: { int: 1 } }, `${p}.attention.context.last`); // [B, H]
  const xLast = g.op('GatherND', [x, last], { batch_dims: { int: 1 } }, `${p}.last`); // [B, H]
  const attended = layerNorm(g.op('Add', [dense(contextLast, `${p}.attention.output`, H, H), xLast]), `${p}.attention.norm`); // [B, H]
  const sequences = feedForward(attended, p); // [B, H]

  // L2 normalisation as trainer/layers/dense.ts l2Normalize.
  const norm = g.op('Max', [g.op('Sqrt', [g.op('ReduceSumSquare', [sequences], { axes: { ints: [-1] }, keepdims: { int: 1 } })]), g.floats('min_norm', [], [1e-12])], {}, 'norm'); // [B, 1]
  g.output(g.op('Div', [sequences, norm], {}, 'normalised'), ENCODER_OUTPUT, 'float32', ['batch', H]);
  return g;
}
