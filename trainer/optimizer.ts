import { tf } from '../infra/tf';
import type { TrainConfig } from './config';
import { ValidationError } from '../errors';
import type { NamedWeight, WeightValues } from './layers/params';

/** An optimizer's position: updates applied and, per trainable weight (by name), AdamW's two moments. */
export interface OptimizerState {
  readonly step: number;
  readonly moments: ReadonlyMap<string, { readonly m: WeightValues; readonly v: WeightValues }>;
}

/**
 * AdamW (Loshchilov & Hutter, decoupled weight decay) exactly as torch.optim.AdamW steps, with the
 * reference's learning-rate schedules (transformers' `get_constant_schedule_with_warmup` /
 * `get_linear_schedule_with_warmup`). tfjs's built-in Adam has no decoupled decay.
 */

export interface ScheduleSettings {
  readonly learningRate: number;
  readonly warmupSteps: number;
  readonly schedule: 'constant' | 'linear';
  /** Needed by the linear schedule: the step at which the rate reaches 0. */
  readonly totalSteps: number;
  /**
   * The step the linear decay starts from at the full rate (default: the end of the warm-up): a
   * run that continues a saved optimizer at step S decays over its own steps, from S to totalSteps.
   */
  readonly decayFrom?: number;
}

/**
 * The learning rate used by the `step`-th update (0-based), as torch's LambdaLR gives it when
 * `scheduler.step()` follows `optimizer.step()`: the first update uses rate 0 when there is a
 * warm-up, then `lr * step / warmup`, then `lr` (constant) or a linear decay to 0 at `totalSteps`.
 */
export function learningRateAt(step: number, s: ScheduleSettings): number {
  if (step < s.warmupSteps) return (s.learningRate * step) / Math.max(1, s.warmupSteps);
  if (s.schedule === 'constant') return s.learningRate;
  const from = Math.max(s.warmupSteps, s.decayFrom ?? 0);
  return s.learningRate * Math.max(0, Math.min(1, (s.totalSteps - step) / Math.max(1, s.totalSteps - from)));
}

export interface AdamWSettings extends ScheduleSettings {
  readonly beta1: number;
  readonly beta2: number;
  readonly epsilon: number;
  readonly weightDecay: number;
  /** `all` (the reference) or `matrices` (no decay on LayerNorm weights and biases). */
  readonly weightDecayOn: 'all' | 'matrices';
}

/** AdamW settings from a run's training config; `totalSteps` is the run's length in updates (the linear schedule ends there). */
export function adamWSettings(train: TrainConfig, totalSteps: number): AdamWSettings {
  return {
    learningRate: train.learningRate,
    warmupSteps: train.warmupSteps,
    schedule: train.schedule,
    totalSteps,
    beta1: train.adamBeta1,
    beta2: train.adamBeta2,
    epsilon: train.adamEpsilon,
    weightDecay: train.weightDecay,
    weightDecayOn: train.weightDecayOn,
  };
}

interface Slot {
  readonly weight: NamedWeight;
  readonly m: tf.Variable;
  readonly v: tf.Variable;
  readonly decay: boolean;
}

function zerosVariable(like: tf.Variable): tf.Variable {
  const zeros = tf.zerosLike(like);
  const variable = tf.variable(zeros, false);
  zeros.dispose();
  return variable;
}

export class AdamW {
  private readonly slots: Slot[];
  private steps = 0;

  /** Creates the moment slots (zeros) for every trainable weight now, so tensor counts stay flat. */
  constructor(
    weights: readonly NamedWeight[],
    private readonly settings: AdamWSettings,
  ) {
    this.slots = weights
      .filter((w) => w.trainable)
      .map((weight) => ({
        weight,
        m: zerosVariable(weight.variable),
        v: zerosVariable(weight.variable),
        decay: settings.weightDecayOn === 'all' || (weight.role !== 'bias' && weight.role !== 'norm'),
      }));
  }

  /** Updates applied so far. */
  get stepCount(): number {
    return this.steps;
  }

  /**
   * The state an update depends on besides the weights: the step (the schedule's position and
   * the bias corrections) and both moments of every trainable weight, copied to the host.
   */
  state(): OptimizerState {
    const moments = new Map<string, { m: WeightValues; v: WeightValues }>();
    for (const slot of this.slots) {
      const shape = [...slot.weight.variable.shape];
      moments.set(slot.weight.name, { m: { shape, values: Float32Array.from(slot.m.dataSync() as Float32Array) }, v: { shape, values: Float32Array.from(slot.v.dataSync() as Float32Array) } });
    }
    return { step: this.steps, moments };
  }

  /**
   * Continues from a saved state: the step and the moments of every trainable weight, which must
   * all be there with their shapes (a ValidationError names what differs). Weights the state has
   * but this optimizer does not train are an error too.
   */
  restore(state: OptimizerState): void {
    if (!Number.isInteger(state.step) || state.step < 0) throw new ValidationError(`optimizer state: step must be a non-negative integer, got ${state.step}`);
    const names = new Set(this.slots.map((s) => s.weight.name));
    const unknown = [...state.moments.keys()].filter((n) => !names.has(n));
    if (unknown.length > 0) throw new ValidationError(`optimizer state: moments of weights this model does not train: ${unknown.join(', ')}`);
    for (const slot of this.slots) {
      const saved = state.moments.get(slot.weight.name);
      if (!saved) throw new ValidationError(`optimizer state: no moments for weight ${slot.weight.name}`);
      const shape = slot.weight.variable.shape;
      for (const [which, w] of [['m', saved.m], ['v', saved.v]] as const) {
        if (w.shape.length !== shape.length || w.shape.some((d, i) => d !== shape[i]) || w.values.length !== slot.m.size) {
          throw new ValidationError(`optimizer state: ${which} of ${slot.weight.name} has shape [${w.shape.join(', ')}], the weight is [${shape.join(', ')}]`);
        }
      }
    }
    for (const slot of this.slots) {
      const saved = state.moments.get(slot.weight.name) as { m: WeightValues; v: WeightValues };
      tf.tidy(() => {
        slot.m.assign(tf.tensor(saved.m.values, slot.m.shape));
        slot.v.assign(tf.tensor(saved.v.values, slot.v.shape));
      });
    }
    this.steps = state.step;
  }

  /** The learning rate the next update will use. */
  get currentLearningRate(): number {
    return learningRateAt(this.steps, this.settings);
  }

  /** The variables in the order {@link apply} expects their gradients. */
  variables(): tf.Variable[] {
    return this.slots.map((s) => s.weight.variable);
  }

  /** One update from gradients keyed by TF variable name (as `tf.variableGrads` returns them). */
  apply(grads: Readonly<Record<string, tf.Tensor>>): void {
    const lr = learningRateAt(this.steps, this.settings);
    this.steps += 1;
    const { beta1, beta2, epsilon, weightDecay } = this.settings;
    const t = this.steps;
    const stepSize = lr / (1 - beta1 ** t);
    const bias2Sqrt = Math.sqrt(1 - beta2 ** t);
    tf.tidy(() => {
      for (const slot of this.slots) {
        const p = slot.weight.variable;
        const g = grads[p.name];
        if (!g) continue;
        const m = tf.add(tf.mul(slot.m, beta1), tf.mul(g, 1 - beta1));
        const v = tf.add(tf.mul(slot.v, beta2), tf.mul(tf.square(g), 1 - beta2));
        slot.m.assign(m);
        slot.v.assign(v);
        const decayed = slot.decay && weightDecay > 0 ? tf.mul(p, 1 - lr * weightDecay) : p;
        const denom = tf.add(tf.div(tf.sqrt(v), bias2Sqrt), epsilon);
        p.assign(tf.sub(decayed, tf.mul(tf.div(m, denom), stepSize)));
      }
    });
  }

  dispose(): void {
    for (const s of this.slots) {
      s.m.dispose();
      s.v.dispose();
    }
  }
}
