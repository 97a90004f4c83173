import { ConfigError, ValidationError } from '../errors';
import { l2NormalizeRows } from '../infra/matrix';
import { tf } from '../infra/tf';
import type { SequenceBatch } from './data';
import type { ItemSideInfo } from './sideInfo';

/**
 * A text prior for ranking: how close each candidate's text is to the user's most recent items.
 *
 * The query of a history is the mean of the text vectors (every field's whitened embedding side
 * by side, L2-normalised per item) of its last `lastItems` distinct items; a candidate's prior is
 * its dot product with that mean (in [-1, 1]). The query items themselves get a prior of 0: an
 * item is always its own nearest text neighbour, and the prior is meant to promote items like the
 * recent ones, not the recent ones themselves (the model decides about repeats).
 *
 * Fused score = model cosine + `weight` x prior. Both parts are bounded cosines, so one weight
 * means the same on every model; it is chosen on the validation split (`bench -- fusion`).
 */
export interface TextPriorSettings {
  /** Weight of the prior in the fused score; 0 turns it off. */
  readonly weight: number;
  /** How many of the latest distinct history items form the query. */
  readonly lastItems: number;
}

/** `[N + 1, D]` row-major: the item text vectors (fields side by side), rows L2-normalised, row 0 zeros. */
export function textPriorTable(info: ItemSideInfo): { readonly table: Float32Array; readonly dims: number } {
  const n = info.itemCount;
  const dims = info.textFields.reduce((d, f) => d + f.dims, 0);
  if (dims === 0) throw new ValidationError('text prior: the side information has no text fields');
  const table = new Float32Array((n + 1) * dims);
  for (let r = 1; r <= n; r++) {
    let offset = r * dims;
    for (const f of info.textFields) {
      table.set(f.table.subarray(r * f.dims, (r + 1) * f.dims), offset);
      offset += f.dims;
    }
  }
  l2NormalizeRows({ data: table, rows: n + 1, cols: dims }); // row 0 stays zeros
  return { table, dims };
}

/** Scores the text prior of batches; holds the item text table as one tensor (dispose it). */
export class TextPrior {
  readonly settings: TextPriorSettings;
  readonly itemCount: number;
  private readonly host: Float32Array;
  private readonly dims: number;
  private readonly table: tf.Tensor2D; // [N + 1, D]

  constructor(info: ItemSideInfo, settings: TextPriorSettings) {
    if (!Number.isFinite(settings.weight) || settings.weight < 0) {
      throw new ValidationError(`text prior: weight must be a finite number >= 0, got ${settings.weight}`, { context: { field: 'weight' } });
    }
    if (!Number.isInteger(settings.lastItems) || settings.lastItems < 1) {
      throw new ValidationError(`text prior: lastItems must be an integer >= 1, got ${settings.lastItems}`, { context: { field: 'lastItems' } });
    }
    this.settings = settings;
    this.itemCount = info.itemCount;
    const { table, dims } = textPriorTable(info);
    this.host = table;
    this.dims = dims;
    this.table = tf.tensor2d(table, [info.itemCount + 1, dims]);
  }

  /** The last `lastItems` distinct non-padding items of row `b` of a batch, latest first. */
  queryItems(batch: SequenceBatch, b: number): number[] {
    const out: number[] = [];
    const row = b * batch.maxLength;
    for (let t = (batch.lengths[b] as number) - 1; t >= 0 && out.length < this.settings.lastItems; t--) {
      const item = batch.items[row + t] as number;
      if (item !== 0 && !out.includes(item)) out.push(item);
    }
    return out;
  }

  /** The prior of every item for each history of the batch, query items 0. `[B, N + 1]` */
  scores(batch: SequenceBatch): tf.Tensor2D {
    const d = this.dims;
    const query = new Float32Array(batch.size * d);
    const zeroed: number[] = [];
    for (let b = 0; b < batch.size; b++) {
      const items = this.queryItems(batch, b);
      for (const item of items) {
        if (item > this.itemCount) throw new ValidationError(`text prior: item ${item} is outside 1..${this.itemCount}`);
        for (let k = 0; k < d; k++) (query[b * d + k] as number) += (this.host[item * d + k] as number) / items.length;
        zeroed.push(b, item);
      }
    }
    return tf.tidy((): tf.Tensor2D => {
      const prior = tf.matMul(tf.tensor2d(query, [batch.size, d]), this.table, false, true) as tf.Tensor2D; // [B, N + 1]
      if (zeroed.length === 0) return prior;
      const pairs = zeroed.length / 2;
      const hits = tf.scatterND(tf.tensor2d(Int32Array.from(zeroed), [pairs, 2], 'int32'), tf.ones([pairs]), [batch.size, this.itemCount + 1]); // [B, N + 1]: 1 at query items
      return tf.mul(prior, tf.sub(1, hits)) as tf.Tensor2D;
    });
  }

  /** `modelScores + weight x prior`. `[B, N + 1]` */
  fuse(modelScores: tf.Tensor2D, batch: SequenceBatch): tf.Tensor2D {
    if (this.settings.weight === 0) return modelScores.clone();
    return tf.tidy(() => tf.add(modelScores, tf.mul(this.scores(batch), this.settings.weight)) as tf.Tensor2D);
  }

  dispose(): void {
    this.table.dispose();
  }
}

/**
 * A comma-separated list of numbers from a flag (`0.25,0.5,1`), each finite and at least `min`
 * (default 0), integers when `integer` is set; anything else is a ConfigError naming the flag.
 */
export function parseNumberList(flag: string, value: string, options: { readonly integer?: boolean; readonly min?: number } = {}): number[] {
  const min = options.min ?? 0;
  const entries = value.split(',').map((v) => v.trim());
  const bad = entries.find((e) => e === '' || !Number.isFinite(Number(e)) || Number(e) < min || (options.integer === true && !Number.isInteger(Number(e))));
  if (bad !== undefined) {
    const what = `${options.integer ? 'integers' : 'numbers'} >= ${min}`;
    throw new ConfigError(`${flag}: expected comma-separated ${what} (e.g. ${options.integer ? '2,5,10' : '0.25,0.5,1'}), got ${JSON.stringify(value)} (bad entry ${JSON.stringify(bad)})`);
  }
  return entries.map(Number);
}
