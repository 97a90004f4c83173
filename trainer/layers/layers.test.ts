import { initTf, tf } from '../../infra/tf';
import { Random } from '../../random';
import { MultiHeadAttention, type PackedGrid } from './attention';
import { CrossAttentionLayer, QFormer } from './crossAttention';
import { Dense, LayerNorm, gelu, l2Normalize } from './dense';
import { INFERENCE, dropout, dropoutMultipliers, trainingContext } from './dropout';
import { FeedForward } from './feedForward';
import { ParamSet } from './params';
import { MASKED_SCORE, TransformerEncoder, TransformerLayer, causalPaddingMask } from './transformer';

beforeAll(async () => {
  await initTf();
});

const H = 8;
const shape = { nLayers: 2, nHeads: 2, hiddenSize: H, innerSize: 16, dropout: 0.3, layerNormEps: 1e-12, initializerRange: 0.02 };

function randomTensor(rng: Random, dims: number[]): tf.Tensor {
  const size = dims.reduce((a, b) => a * b, 1);
  return tf.tensor(Float32Array.from({ length: size }, () => rng.normal()), dims);
}

/** Runs `f` (a tidy call) twice more after a warm-up call and checks that no tensor survives a call. */
function expectNoLeak(f: () => void): void {
  f();
  const before = tf.memory().numTensors;
  f();
  f();
  expect(tf.memory().numTensors).toBe(before);
}

describe('ParamSet', () => {
  it('names weights hierarchically, draws normal inits from the seed, and refuses duplicates', () => {
    const a = ParamSet.create(new Random(1));
    a.child('x').normal('kernel', [50, 40], 0.02, 'kernel');
    a.child('x').ones('gamma', [3], 'norm');
    expect(a.weights().map((w) => w.name)).toEqual(['x.kernel', 'x.gamma']);
    const values = a.weights()[0]!.variable.dataSync() as Float32Array;
    const mean = values.reduce((s, v) => s + v, 0) / values.length;
    const std = Math.sqrt(values.reduce((s, v) => s + (v - mean) ** 2, 0) / values.length);
    expect(Math.abs(mean)).toBeLessThan(0.002);
    expect(std).toBeCloseTo(0.02, 2);
    const b = ParamSet.create(new Random(1));
    b.child('x').normal('kernel', [50, 40], 0.02, 'kernel');
    expect(Array.from(b.weights()[0]!.variable.dataSync())).toEqual(Array.from(values));
    expect(() => a.child('x').zeros('gamma', [3], 'norm')).toThrow(/defined twice/);
    for (const w of [...a.weights(), ...b.weights()]) w.variable.dispose();
  });
});

describe('Dense, LayerNorm, GELU, l2Normalize', () => {
  it('Dense maps [..., in] to [..., out] as x W + b', () => {
    const params = ParamSet.create(new Random(2));
    const dense = new Dense(params, 3, 5, 0.02);
    const x = randomTensor(new Random(3), [2, 4, 3]);
    const y = dense.apply(x);
    expect(y.shape).toEqual([2, 4, 5]);
    const expected = tf.add(tf.matMul(tf.reshape(x, [8, 3]), dense.kernel), dense.bias);
    expect(Array.from(tf.reshape(y, [8, 5]).dataSync())).toEqual(Array.from(expected.dataSync()));
    expectNoLeak(() => tf.tidy(() => void dense.apply(x)));
    tf.dispose([x, y, expected]);
    params.weights().forEach((w) => w.variable.dispose());
  });

  it('LayerNorm gives zero mean and unit variance rows at init, and its hand-written gradient matches autodiff', () => {
    const params = ParamSet.create(new Random(4));
    const norm = new LayerNorm(params, 6, 1e-12);
    const x = randomTensor(new Random(5), [3, 2, 6]);
    const y = norm.apply(x);
    expect(y.shape).toEqual([3, 2, 6]);
    const { mean, variance } = tf.moments(y, -1);
    for (const m of mean.dataSync()) expect(Math.abs(m)).toBeLessThan(1e-5);
    for (const v of variance.dataSync()) expect(v).toBeCloseTo(1, 4);
    // Non-trivial gamma/beta so their gradients are exercised.
    norm.gamma.assign(randomTensor(new Random(6), [6]) as tf.Tensor1D);
    norm.beta.assign(randomTensor(new Random(7), [6]) as tf.Tensor1D);
    const weight = randomTensor(new Random(8), [3, 2, 6]);
    const reference = (input: tf.Tensor, g: tf.Tensor, b: tf.Tensor): tf.Scalar => {
      const m = tf.moments(input, -1, true);
      const out = tf.add(tf.mul(tf.div(tf.sub(input, m.mean), tf.sqrt(tf.add(m.variance, 1e-12))), g), b);
      return tf.sum(tf.mul(out, weight));
    };
    const ours = [tf.grad((input: tf.Tensor) => tf.sum(tf.mul(norm.apply(input), weight)))(x)];
    // `norm.apply` reads its own variables; their gradients come from variableGrads.
    const viaVars = tf.variableGrads(() => tf.sum(tf.mul(norm.apply(x), weight)) as tf.Scalar, [norm.gamma as tf.Variable, norm.beta as tf.Variable]);
    const expected = tf.grads(reference)([x, norm.gamma, norm.beta]);
    const close = (a: tf.Tensor, b: tf.Tensor): void => {
      const av = a.dataSync();
      const bv = b.dataSync();
      expect(av.length).toBe(bv.length);
      av.forEach((v, i) => expect(v).toBeCloseTo(bv[i] as number, 4));
    };
    close(ours[0]!, expected[0]!);
    close(viaVars.grads[norm.gamma.name]!, expected[1]!);
    close(viaVars.grads[norm.beta.name]!, expected[2]!);
    tf.dispose([x, y, mean, variance, weight, ...ours, ...expected, viaVars.value, ...Object.values(viaVars.grads)]);
    expectNoLeak(() =>
      tf.tidy(() => {
        tf.variableGrads(() => tf.sum(norm.apply(randomTensor(new Random(9), [2, 6]))) as tf.Scalar, [norm.gamma as tf.Variable]);
      }),
    );
    params.weights().forEach((w) => w.variable.dispose());
  });

  it('GELU matches known values and its derivative', () => {
    const x = tf.tensor1d([-2, -0.5, 0, 1, 3]);
    const y = gelu(x).dataSync();
    // x * Phi(x): Phi(1) = 0.841345, Phi(-0.5) = 0.308538, Phi(3) = 0.998650, Phi(-2) = 0.022750
    const expected = [-2 * 0.02275013, -0.5 * 0.30853754, 0, 0.84134475, 3 * 0.9986501];
    y.forEach((v, i) => expect(v).toBeCloseTo(expected[i] as number, 5));
    const dy = tf.grad((t: tf.Tensor) => tf.sum(gelu(t)))(x).dataSync();
    const phi = (v: number): number => Math.exp(-v * v / 2) / Math.sqrt(2 * Math.PI);
    const cdf = [0.02275013, 0.30853754, 0.5, 0.84134475, 0.9986501];
    [-2, -0.5, 0, 1, 3].forEach((v, i) => expect(dy[i]).toBeCloseTo((cdf[i] as number) + v * phi(v), 5));
    x.dispose();
  });

  it('l2Normalize gives unit rows and leaves a zero row at zero', () => {
    const x = tf.tensor2d([[3, 4], [0, 0]]);
    expect(Array.from(l2Normalize(x).dataSync())).toEqual([0.6000000238418579, 0.800000011920929, 0, 0]);
    x.dispose();
  });
});

describe('dropout', () => {
  it('keeps 1 - rate of the entries scaled by 1 / (1 - rate), repeats for the same seed, and is the identity at inference', () => {
    const m = dropoutMultipliers(100_001, 0.3, new Random(11));
    const kept = m.filter((v) => v !== 0);
    expect(kept.length / m.length).toBeCloseTo(0.7, 2);
    for (const v of kept) expect(v).toBeCloseTo(1 / 0.7, 6);
    expect(Array.from(dropoutMultipliers(1001, 0.3, new Random(11)))).toEqual(Array.from(m.subarray(0, 1001)));
    const x = tf.ones([4, 5]);
    expect(dropout(x, 0.5, INFERENCE)).toBe(x);
    const y = dropout(x, 0.5, trainingContext(new Random(12)));
    expect(y.shape).toEqual([4, 5]);
    for (const v of y.dataSync()) expect([0, 2]).toContain(v);
    tf.dispose([x, y]);
  });
});

describe('attention, feed-forward, transformer, Q-Former', () => {
  it('causalPaddingMask lets query i see keys j <= i that are not padding', () => {
    const mask = causalPaddingMask(Int32Array.from([5, 6, 0, 7, 0, 0]), 2, 3);
    expect(mask.shape).toEqual([2, 1, 3, 3]);
    const M = MASKED_SCORE;
    expect(Array.from(mask.dataSync())).toEqual([0, M, M, 0, 0, M, 0, 0, M, /* row 2 */ 0, M, M, 0, M, M, 0, M, M]);
    mask.dispose();
  });

  it('MultiHeadAttention, FeedForward, TransformerLayer and the Q-Former keep [tokens, H] shapes without leaking', () => {
    const params = ParamSet.create(new Random(13));
    const mha = new MultiHeadAttention(params.child('mha'), { hiddenSize: H, nHeads: 2, hiddenDropout: 0.1, attentionDropout: 0.1, layerNormEps: 1e-12, initializerRange: 0.02 });
    const ff = new FeedForward(params.child('ff'), shape, 0.1);
    const layer = new TransformerLayer(params.child('layer'), shape);
    const cross = new CrossAttentionLayer(params.child('cross'), shape);
    const qformer = new QFormer(params.child('qformer'), shape);
    const rng = new Random(14);
    const q = randomTensor(rng, [3 * 4, H]) as tf.Tensor2D; // 3 groups of 4 queries
    const kv = randomTensor(rng, [3 * 2, H]) as tf.Tensor2D; // 3 groups of 2 keys
    const ctx = trainingContext(rng);
    expect(mha.apply(q, kv, { n: 3, lq: 4, lk: 2 }, undefined, ctx).shape).toEqual([12, H]);
    expect(ff.apply(q, ctx).shape).toEqual([12, H]);
    const mask = causalPaddingMask(Int32Array.from({ length: 12 }, (_, i) => 1 + i), 3, 4);
    expect(layer.apply(q, { n: 3, length: 4 }, mask, ctx).shape).toEqual([12, H]);
    expect(cross.apply(q, kv, { n: 3, c: 4, t: 2 }, ctx).shape).toEqual([12, H]);
    const out = qformer.apply(tf.reshape(q, [3, 4, H]) as tf.Tensor3D, tf.reshape(kv, [3, 2, H]) as tf.Tensor3D, ctx);
    expect(out.shape).toEqual([3, 4, H]);
    expectNoLeak(() =>
      tf.tidy(() => {
        qformer.apply(tf.reshape(q, [3, 4, H]) as tf.Tensor3D, tf.reshape(kv, [3, 2, H]) as tf.Tensor3D, ctx);
        layer.apply(q, { n: 3, length: 4 }, mask, ctx);
      }),
    );
    tf.dispose([q, kv, mask, out]);
    params.weights().forEach((w) => w.variable.dispose());
  });

  it('single-key cross-attention equals the general formula (the broadcast shortcut is exact)', () => {
    const params = ParamSet.create(new Random(15));
    const mha = new MultiHeadAttention(params, { hiddenSize: H, nHeads: 2, hiddenDropout: 0, attentionDropout: 0, layerNormEps: 1e-12, initializerRange: 0.2 });
    const rng = new Random(16);
    const q = randomTensor(rng, [2 * 3, H]) as tf.Tensor2D;
    const kv = randomTensor(rng, [2, H]) as tf.Tensor2D;
    const one = mha.apply(q, kv, { n: 2, lq: 3, lk: 1 }, undefined, INFERENCE);
    // The same key twice gives the same attention output (each copy gets probability 1/2).
    const twice = mha.apply(q, tf.reshape(tf.stack([kv, kv], 1), [4, H]) as tf.Tensor2D, { n: 2, lq: 3, lk: 2 }, undefined, INFERENCE);
    const a = one.dataSync();
    const b = twice.dataSync();
    a.forEach((v, i) => expect(v).toBeCloseTo(b[i] as number, 5));
    tf.dispose([q, kv, one, twice]);
    params.weights().forEach((w) => w.variable.dispose());
  });

  it('the packed transformer equals the full-grid transformer at every non-padding position, and is causal', () => {
    const params = ParamSet.create(new Random(17));
    const encoder = new TransformerEncoder(params, { ...shape, initializerRange: 0.3 });
    const B = 3;
    const L = 4;
    const lengths = [4, 1, 2];
    const items = Int32Array.from([1, 2, 3, 4, 5, 0, 0, 0, 6, 7, 0, 0]);
    const rng = new Random(18);
    const grid = randomTensor(rng, [B * L, H]) as tf.Tensor2D;
    const positions: number[] = [];
    const placement = new Int32Array(B * L);
    let v = 0;
    for (let b = 0; b < B; b++) for (let l = 0; l < L; l++) if (l < (lengths[b] as number)) positions.push(b * L + l);
    placement.fill(positions.length);
    positions.forEach((p, t) => (placement[p] = t));
    v = positions.length;
    const packed: PackedGrid = { batchSize: B, maxLength: L, placement: tf.tensor1d(placement, 'int32'), positions: tf.tensor1d(positions, 'int32') };
    const tokens = tf.gather(grid, packed.positions) as tf.Tensor2D;
    const mask = causalPaddingMask(items, B, L);
    const full = encoder.apply(grid, { n: B, length: L }, mask, INFERENCE);
    const fromPacked = encoder.applyPacked(tokens, packed, mask, INFERENCE);
    expect(fromPacked.shape).toEqual([v, H]);
    const expected = tf.gather(full, packed.positions).dataSync();
    fromPacked.dataSync().forEach((x, i) => expect(x).toBeCloseTo(expected[i] as number, 5));
    // Changing the last token of row 0 leaves the outputs at its earlier positions unchanged.
    const changed = tf.concat([tf.slice(tokens, [0, 0], [3, H]), tf.ones([1, H]), tf.slice(tokens, [4, 0], [-1, H])]) as tf.Tensor2D;
    const after = encoder.applyPacked(changed, packed, mask, INFERENCE);
    const before3 = tf.slice(fromPacked, [0, 0], [3, H]).dataSync();
    tf.slice(after, [0, 0], [3, H]).dataSync().forEach((x, i) => expect(x).toBeCloseTo(before3[i] as number, 6));
    expect(Math.abs((tf.slice(after, [3, 0], [1, 1]).dataSync()[0] as number) - (tf.slice(fromPacked, [3, 0], [1, 1]).dataSync()[0] as number))).toBeGreaterThan(1e-4);
    tf.dispose([grid, tokens, mask, full, fromPacked, changed, after, packed.placement, packed.positions]);
    params.weights().forEach((w) => w.variable.dispose());
  });
});
