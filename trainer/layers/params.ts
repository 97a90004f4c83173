import { tf } from '../../infra/tf';
import type { Random } from '../../random';

/**
 * Named model weights. Layers create their weights through a {@link ParamSet} so that every
 * weight has a stable, unique, hierarchical name (`encoder.layers.0.attention.query.kernel`)
 * used by checkpoints, and an init drawn from the seeded {@link Random}.
 */

/** What a weight is, for weight-decay rules and checks. */
export type WeightRole = 'kernel' | 'bias' | 'norm' | 'embedding' | 'constant';

export interface NamedWeight {
  readonly name: string;
  readonly variable: tf.Variable;
  readonly role: WeightRole;
  /** False for weights the optimizer must not touch (e.g. the mask/padding code row). */
  readonly trainable: boolean;
}

/** Values of a weight outside TF (checkpoints, best-weights snapshots). */
export interface WeightValues {
  readonly shape: number[];
  readonly values: Float32Array;
}

export class ParamSet {
  private constructor(
    /** Null: the values are set right after (a checkpoint being loaded), so random inits are zeros instead. */
    private readonly rng: Random | null,
    private readonly prefix: string,
    private readonly list: NamedWeight[],
  ) {}

  /**
   * A new, empty set drawing its inits from `rng`; with null, every init is zeros (cheap: for a
   * model whose weights are loaded next, a random init would be drawn and thrown away).
   */
  static create(rng: Random | null): ParamSet {
    return new ParamSet(rng, '', []);
  }

  /** A view that prefixes names with `name.` and adds to the same list. */
  child(name: string): ParamSet {
    return new ParamSet(this.rng, this.qualify(name), this.list);
  }

  /** All weights created through this set and its children, in creation order. */
  weights(): NamedWeight[] {
    return this.list.slice();
  }

  /** Normal(0, std) init (dense kernels, embeddings). */
  normal(name: string, shape: number[], std: number, role: WeightRole, trainable = true): tf.Variable {
    if (this.rng === null) return this.add(name, tf.zeros(shape, 'float32'), role, trainable);
    const size = shape.reduce((a, b) => a * b, 1);
    const values = new Float32Array(size);
    for (let i = 0; i < size; i++) values[i] = this.rng.normal() * std;
    return this.add(name, tf.tensor(values, shape, 'float32'), role, trainable);
  }

  zeros(name: string, shape: number[], role: WeightRole): tf.Variable {
    return this.add(name, tf.zeros(shape, 'float32'), role, true);
  }

  ones(name: string, shape: number[], role: WeightRole): tf.Variable {
    return this.add(name, tf.ones(shape, 'float32'), role, true);
  }

  private qualify(name: string): string {
    return this.prefix ? `${this.prefix}.${name}` : name;
  }

  private add(name: string, initial: tf.Tensor, role: WeightRole, trainable: boolean): tf.Variable {
    const full = this.qualify(name);
    if (this.list.some((w) => w.name === full)) throw new Error(`weight ${full} is defined twice`);
    // TF variable names are engine-global; ours are per model, so let TF pick its own.
    const variable = tf.variable(initial, trainable);
    initial.dispose();
    this.list.push({ name: full, variable, role, trainable });
    return variable;
  }
}
