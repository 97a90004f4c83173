import { initTf, tf } from '../infra/tf';
import { Random } from '../random';
import { ParamSet } from './layers/params';
import { AdamW, learningRateAt } from './optimizer';

beforeAll(async () => {
  await initTf();
});

describe('learning-rate schedules', () => {
  const base = { learningRate: 1e-3, warmupSteps: 4, totalSteps: 10 };

  it('warm up linearly from 0, then stay constant', () => {
    const s = { ...base, schedule: 'constant' as const };
    expect([0, 1, 2, 3, 4, 5, 100].map((t) => learningRateAt(t, s))).toEqual([0, 0.00025, 0.0005, 0.00075, 0.001, 0.001, 0.001]);
  });

  it('warm up, then decay linearly to 0 at totalSteps', () => {
    const s = { ...base, schedule: 'linear' as const };
    expect(learningRateAt(4, s)).toBeCloseTo(1e-3, 12);
    expect(learningRateAt(7, s)).toBeCloseTo(0.5e-3, 12);
    expect(learningRateAt(10, s)).toBe(0);
    expect(learningRateAt(12, s)).toBe(0);
  });

  it('a run continued at step S decays linearly over its own steps, from the full rate at S', () => {
    const s = { ...base, schedule: 'linear' as const, totalSteps: 110, decayFrom: 100 };
    expect(learningRateAt(100, s)).toBeCloseTo(1e-3, 12);
    expect(learningRateAt(105, s)).toBeCloseTo(0.5e-3, 12);
    expect(learningRateAt(110, s)).toBe(0);
    // Still in warm-up at S: the warm-up ends first, then the decay runs from its end.
    expect(learningRateAt(2, { ...s, totalSteps: 12, decayFrom: 2 })).toBeCloseTo(0.5e-3, 12);
    expect(learningRateAt(8, { ...s, totalSteps: 12, decayFrom: 2 })).toBeCloseTo(0.5e-3, 12);
  });

  it('without warm-up the first step uses the full rate', () => {
    expect(learningRateAt(0, { ...base, warmupSteps: 0, schedule: 'constant' })).toBe(1e-3);
  });
});

/** torch.optim.AdamW, step by step, in plain numbers. */
function torchAdamW(p: number[], grads: number[][], o: { lrs: number[]; wd: number; b1: number; b2: number; eps: number; decay: boolean }): number[] {
  const m = p.map(() => 0);
  const v = p.map(() => 0);
  const out = p.slice();
  grads.forEach((g, s) => {
    const t = s + 1;
    const lr = o.lrs[s] as number;
    for (let i = 0; i < out.length; i++) {
      if (o.decay) out[i] = (out[i] as number) * (1 - lr * o.wd);
      m[i] = o.b1 * (m[i] as number) + (1 - o.b1) * (g[i] as number);
      v[i] = o.b2 * (v[i] as number) + (1 - o.b2) * (g[i] as number) ** 2;
      const mhat = (m[i] as number) / (1 - o.b1 ** t);
      const vhat = (v[i] as number) / (1 - o.b2 ** t);
      out[i] = (out[i] as number) - (lr * mhat) / (Math.sqrt(vhat) + o.eps);
    }
  });
  return out;
}

describe('AdamW', () => {
  it('steps exactly as torch AdamW (decoupled decay, bias correction, warm-up), decaying only matrices when asked', () => {
    const params = ParamSet.create(new Random(1));
    const kernel = params.normal('kernel', [2, 2], 1, 'kernel');
    const bias = params.zeros('bias', [2], 'bias');
    bias.assign(tf.tensor1d([0.5, -1]));
    const start = { kernel: Array.from(kernel.dataSync()), bias: Array.from(bias.dataSync()) };
    const settings = { learningRate: 0.1, warmupSteps: 2, schedule: 'constant' as const, totalSteps: 10, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0.05, weightDecayOn: 'matrices' as const };
    const opt = new AdamW(params.weights(), settings);
    const kg = [[0.3, -0.2, 0.1, 0.4], [-0.1, 0.2, 0.5, 0.0], [0.2, 0.2, -0.3, 0.1]];
    const bg = [[1, -1], [0.5, 0.5], [-2, 0.1]];
    const before = tf.memory().numTensors;
    for (let s = 0; s < 3; s++) {
      const grads = { [kernel.name]: tf.tensor2d(kg[s]!, [2, 2]), [bias.name]: tf.tensor1d(bg[s]!) };
      opt.apply(grads);
      tf.dispose(Object.values(grads));
    }
    expect(tf.memory().numTensors).toBe(before);
    expect(opt.stepCount).toBe(3);
    const lrs = [0, 0.05, 0.1];
    const expectedKernel = torchAdamW(start.kernel, kg, { lrs, wd: 0.05, b1: 0.9, b2: 0.999, eps: 1e-8, decay: true });
    const expectedBias = torchAdamW(start.bias, bg, { lrs, wd: 0.05, b1: 0.9, b2: 0.999, eps: 1e-8, decay: false });
    kernel.dataSync().forEach((v, i) => expect(v).toBeCloseTo(expectedKernel[i] as number, 6));
    bias.dataSync().forEach((v, i) => expect(v).toBeCloseTo(expectedBias[i] as number, 6));
    opt.dispose();
    params.weights().forEach((w) => w.variable.dispose());
  });

  it('never touches weights marked not trainable', () => {
    const params = ParamSet.create(new Random(2));
    const frozen = params.normal('frozen', [3], 1, 'constant', false);
    const trained = params.normal('trained', [3], 1, 'embedding');
    const values = Array.from(frozen.dataSync());
    const opt = new AdamW(params.weights(), { learningRate: 0.1, warmupSteps: 0, schedule: 'constant', totalSteps: 1, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0.1, weightDecayOn: 'all' });
    expect(opt.variables()).toEqual([trained]);
    const g = tf.ones([3]);
    opt.apply({ [frozen.name]: g, [trained.name]: g });
    expect(Array.from(frozen.dataSync())).toEqual(values);
    g.dispose();
    opt.dispose();
    params.weights().forEach((w) => w.variable.dispose());
  });
});
