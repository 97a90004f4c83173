import { ValidationError } from '../../errors';
import { MASKED_SCORE, type WeightValues } from '../../trainer';
import { ONNX_INT64, OnnxGraphBuilder, type OnnxValue } from './onnxGraph';

/**
 * The user encoder as an ONNX graph: the trainer's `SequenceEncoder` at inference (item token +
 * position embedding -> LayerNorm -> causal post-LN transformer -> output at each history's last
 * item), then L2 normalisation, computed op for op as trainer/layers does it.
 *
 * - Input `item_ids` int32 `[batch, sequence]`, sequence <= L (the model's maxHistoryLength):
 *   histories left-aligned, 0 = padding (a batch's `items` as they are, or with trailing padding
 *   columns cut: the engine runs each group of rows at its own longest length). Lengths are not
 *   an input: row b's length is its count of non-zero ids (left-aligned rows, checked by the
 *   engine), so ids and lengths cannot disagree. The position embeddings and the causal mask are
 *   sliced to `sequence`.
 * - Output `user_vectors` float32 `[batch, H]`, L2-normalised (`x / max(|x|, 1e-12)`).
 * - Only each row's last position reaches the output, so the last layer runs there alone: its
 *   query is that position's (attending every valid key, all at or before it), and its output
 *   projection and feed-forward run on `[batch, H]` rows (where ONNX Runtime fuses MatMul + Add
 *   into Gemm). The layers before it run at every position, their keys and values being needed.
 *   Same vectors as the whole grid (layout 1); on the 100,000-item benchmark's encoder 15% faster
 *   for one history, ~1.5x for 32.
 * - Opset 17 (IR version 8, its pair in ONNX's version table): it has LayerNormalization (17) and
 *   Erf (13); GELU is built from Erf, `x * (erf(x / sqrt 2) + 1) * 0.5`, the form ONNX Runtime's
 *   optimizer fuses (with the bias before it) into one BiasGelu node (the Gelu op needs opset 20);
 *   trainer/layers/dense.ts multiplies by sqrt(1/2) instead, a difference of rounding.
 * - Attention mask: query i attends key j when j <= i and id j is not 0, else the trainer's
 *   additive MASKED_SCORE (-10000, finite): a row always has its own first item to attend (lengths
 *   are >= 1) and a fully masked row would give a uniform softmax, never NaN (no -Infinity).
 * - The token table (item id -> the vector it enters the encoder with: SASRec's embeddings,
 *   CCFRec's Q-Former code means, see `tokenTable()`) is an initializer: one Gather per history.
 * - Padding positions run through the layers before the last like the grid version of the
 *   trainer's attention (the trainer packs them out); they are masked as keys and never gathered,
 *   so no valid position reads them.
 */

/** The graph layout {@link buildEncoderGraph} builds (the manifest's `graph`; 1: every layer at every position). */
export const ENCODER_GRAPH_VERSION = 2;
export const ENCODER_INPUT = 'item_ids';
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
  const d = H / nHeads;
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
  const tokens = g.op('Gather', [g.floats('token_table', [N + 1, H], tokenTable), ids], { axis: { int: 0 } }, 'tokens'); // [B, S, H]
  const positionTable = g.floats('encoder.positionEmbedding', [L, H], weightOf(weights, 'encoder.positionEmbedding', [L, H])); // [L, H]
  const positions = g.op('Slice', [positionTable, zero, S, zero], {}, 'positions'); // [S, H]
  let x = layerNorm(g.op('Add', [tokens, positions], {}, 'positioned'), 'norm'); // [B, S, H]

  // Additive masks: the last layer's [B, 1, 1, S] (0 where id j != 0), and the layers' before it
  // [B, 1, S, S] (0 where j <= i and id j != 0; built only when there are such layers);
  // MASKED_SCORE elsewhere.
  const valid = g.op('Not', [g.op('Equal', [ids, g.int32s('zero_id', [], [0])])], {}, 'valid'); // [B, S] bool
  const keys = g.op('Unsqueeze', [valid, g.int64s('axes_1_2', [2], [1, 2])], {}, 'valid_keys'); // [B, 1, 1, S]
  const attend = g.floats('attend', [], [0]);
  const maskedScore = g.floats('masked_score', [], [MASKED_SCORE]);
  const keyMask = g.op('Where', [keys, attend, maskedScore], {}, 'key_mask'); // [B, 1, 1, S]: the last position's row of the causal mask
  let causalMask: OnnxValue | undefined;
  const fullMask = (): OnnxValue => {
    if (causalMask) return causalMask;
    const causalTable = g.bools('causal', [L, L], Array.from({ length: L * L }, (_, k) => k % L <= Math.floor(k / L))); // [L, L]
    const causal = g.op('Slice', [causalTable, g.int64s('starts_0_0', [2], [0, 0]), g.op('Concat', [S, S], { axis: { int: 0 } }, 'ends_s_s'), g.int64s('axes_0_1', [2], [0, 1])], {}, 'causal_s'); // [S, S]
    const allowed = g.op('And', [causal, keys], {}, 'allowed'); // [B, 1, S, S]
    causalMask = g.op('Where', [allowed, attend, maskedScore], {}, 'mask'); // [B, 1, S, S]
    return causalMask;
  };

  const headShape = g.int64s('head_shape', [4], [0, 0, nHeads, d]); // [B, S, heads, d]
  const hiddenShape = g.int64s('hidden_shape', [3], [0, 0, H]); // [B, S, H]
  const scale = g.floats('scale', [], [1 / Math.sqrt(d)]);
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
  const heads = (x: OnnxValue, p: string, name: string, perm: number[]): OnnxValue =>
    g.op('Transpose', [g.op('Reshape', [dense(x, `${p}.attention.${name}`, H, H), headShape])], { perm: { ints: perm } }, `${p}.attention.${name}.heads`);

  // The output at each row's last item: position (count of non-zero ids) - 1.
  const lengths = g.op('ReduceSum', [g.op('Cast', [valid], { to: { int: ONNX_INT64 } }), g.int64s('axis_1', [1], [1])], { keepdims: { int: 0 } }, 'lengths'); // [B]
  const last = g.op('Unsqueeze', [g.op('Sub', [lengths, g.int64s('one_i64', [], [1])]), g.int64s('axis_1b', [1], [1])], {}, 'last_position'); // [B, 1]

  for (let layer = 0; layer < nLayers - 1; layer++) {
    const p = `transformer.layers.${layer}`;
    // Multi-head self-attention, residual, post-LayerNorm.
    const q = heads(x, p, 'query', [0, 2, 1, 3]); // [B, heads, S, d]
    const kT = heads(x, p, 'key', [0, 2, 3, 1]); // [B, heads, d, S]
    const v = heads(x, p, 'value', [0, 2, 1, 3]); // [B, heads, S, d]
    const scores = g.op('Add', [g.op('Mul', [g.op('MatMul', [q, kT]), scale]), fullMask()], {}, `${p}.attention.scores`); // [B, heads, S, S]
    const probs = g.op('Softmax', [scores], { axis: { int: -1 } }, `${p}.attention.probs`);
    const context = g.op('Reshape', [g.op('Transpose', [g.op('MatMul', [probs, v])], { perm: { ints: [0, 2, 1, 3] } }), hiddenShape], {}, `${p}.attention.context`); // [B, S, H]
    const attended = layerNorm(g.op('Add', [dense(context, `${p}.attention.output`, H, H), x]), `${p}.attention.norm`); // [B, S, H]
    x = feedForward(attended, p); // [B, S, H]
  }

  // The last layer at each row's last position only (nothing else reaches the output): its query
  // row attends every valid key (they are the positions up to it, so the causal mask adds nothing
  // there), and the output projection and feed-forward run on [B, H] rows.
  const p = `transformer.layers.${nLayers - 1}`;
  const xLast = g.op('GatherND', [x, last], { batch_dims: { int: 1 } }, `${p}.last`); // [B, H]
  const qLast = g.op('Reshape', [dense(xLast, `${p}.attention.query`, H, H), g.int64s('query_shape', [4], [0, nHeads, 1, d])], {}, `${p}.attention.query.heads`); // [B, heads, 1, d]
  const kT = heads(x, p, 'key', [0, 2, 3, 1]); // [B, heads, d, S]
  const v = heads(x, p, 'value', [0, 2, 1, 3]); // [B, heads, S, d]
  const scores = g.op('Add', [g.op('Mul', [g.op('MatMul', [qLast, kT]), scale]), keyMask], {}, `${p}.attention.scores`); // [B, heads, 1, S]
  const probs = g.op('Softmax', [scores], { axis: { int: -1 } }, `${p}.attention.probs`);
  const context = g.op('Reshape', [g.op('MatMul', [probs, v]), g.int64s('row_shape', [2], [0, H])], {}, `${p}.attention.context`); // [B, H]
  const attended = layerNorm(g.op('Add', [dense(context, `${p}.attention.output`, H, H), xLast]), `${p}.attention.norm`); // [B, H]
  const sequences = feedForward(attended, p); // [B, H]

  // L2 normalisation as trainer/layers/dense.ts l2Normalize.
  const norm = g.op('Max', [g.op('Sqrt', [g.op('ReduceSumSquare', [sequences], { axes: { ints: [-1] }, keepdims: { int: 1 } })]), g.floats('min_norm', [], [1e-12])], {}, 'norm'); // [B, 1]
  g.output(g.op('Div', [sequences, norm], {}, 'normalised'), ENCODER_OUTPUT, 'float32', ['batch', H]);
  return g;
}
