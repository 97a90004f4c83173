/**
 * Seeded pseudo-random numbers. Every random choice in streamrec takes a {@link Random} that the
 * caller creates from a seed; nothing reads a hidden global generator.
 *
 * The generator is sfc32 (Small Fast Counting, 128-bit state), seeded through splitmix32 so that
 * nearby seeds give unrelated streams.
 */
export class Random {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  private spareNormal: number | undefined;

  constructor(readonly seed: number) {
    let s = seed >>> 0;
    const next = (): number => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = next();
    this.b = next();
    this.c = next();
    this.d = next();
    for (let i = 0; i < 12; i++) this.nextUint32();
  }

  /** Uniform 32-bit unsigned integer. */
  nextUint32(): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0;
    this.d = (this.d + 1) >>> 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) >>> 0;
    this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0;
    this.c = (this.c + t) >>> 0;
    return t;
  }

  /** Uniform float in [0, 1). */
  next(): number {
    return this.nextUint32() / 4294967296;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** Standard normal (Box-Muller, caches the second value). */
  normal(): number {
    if (this.spareNormal !== undefined) {
      const v = this.spareNormal;
      this.spareNormal = undefined;
      return v;
    }
    let u = 0;
    while (u === 0) u = this.next();
    const v = this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spareNormal = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** Exponential with the given mean. */
  exponential(mean: number): number {
    let u = 0;
    while (u === 0) u = this.next();
    return -Math.log(u) * mean;
  }

  /** Shuffles `items` in place (Fisher-Yates) and returns it. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = items[i] as T;
      items[i] = items[j] as T;
      items[j] = tmp;
    }
    return items;
  }

  /** The generator's position: a {@link Random.restore}d copy draws exactly what this one draws next. */
  state(): RandomState {
    // As unsigned words (`a` is kept signed after its xor; only its value mod 2^32 matters).
    return { seed: this.seed, words: [this.a >>> 0, this.b >>> 0, this.c >>> 0, this.d >>> 0], ...(this.spareNormal !== undefined ? { spareNormal: this.spareNormal } : {}) };
  }

  /** A generator at a saved position (what a checkpoint keeps to continue a run). */
  static restore(state: RandomState): Random {
    const words = state.words;
    if (words.length !== 4 || words.some((w) => !Number.isInteger(w) || w < 0 || w > 0xffffffff)) {
      throw new RangeError(`Random.restore: expected four 32-bit unsigned words, got ${JSON.stringify(words)}`);
    }
    const r = new Random(state.seed);
    [r.a, r.b, r.c, r.d] = words as [number, number, number, number];
    r.spareNormal = state.spareNormal;
    return r;
  }

  /** A new generator whose stream is derived from this one (for independent sub-tasks). */
  fork(): Random {
    return new Random(this.nextUint32());
  }
}

/** A {@link Random}'s position: its seed, the four sfc32 words and a cached normal draw. */
export interface RandomState {
  readonly seed: number;
  readonly words: readonly number[];
  readonly spareNormal?: number;
}
