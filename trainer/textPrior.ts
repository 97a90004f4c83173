import { ConfigError, ValidationError } from '../errors';
import { l2NormalizeRows } from '../infra/matrix';
import { inSlices } from '../infra/slices';
import { tf } from '../infra/tf';
import { TEXT_PRIOR_POOLINGS, type TextPriorPooling } from './config';
import type { SequenceBatch } from './data';
import type { ItemSideInfo } from './sideInfo';

/** What the text prior reads of the side information: the item text tables (no semantic IDs needed). */
export type ItemTextTables = Pick<ItemSideInfo, 'itemCount' | 'textFields'>;

/**
 * A text prior for ranking: how close each candidate's text is to the user's most recent items.
 *
 * Items are text vectors (every field's whitened embedding side by side, L2-normalised per
 * item). The query of a history is its last `lastItems` distinct items; a candidate's prior is
 * its cosine to them, pooled (`pooling`):
 * - `max` (the default): the cosine to the nearest query item. On Amazon Scientific the next
 *   item is often a near-variant of one of the recent ones, and the max keeps that signal where a
 *   mean would dilute it (valid NDCG@10 of a fused CCFRec 0.0877 vs 0.0843).
 * - `mean`: the cosine to the mean of the query vectors (= the mean cosine); checkpoints written
 *   before pooling existed used it.
 * The query items themselves get a prior of 0: an item is always its own nearest text neighbour,
 * and the prior is meant to promote items like the recent ones, not the recent ones themselves
 * (the model decides about repeats).
 *
 * Fused score = model cosine + `weight` x prior. Both parts are bounded cosines, so one weight
 * means the same on every model; it is chosen on the validation split (`bench -- fusion`).
 */
export interface TextPriorSettings {
  /** Weight of the prior in the fused score; 0 turns it off. */
  readonly weight: number;
  /** How many of the latest distinct history items form the query. */
  readonly lastItems: number;
  /** How a candidate's cosines to the query items become one prior. */
  readonly pooling: TextPriorPooling;
}

/** The item text vectors a prior compares: `[N + 1, D]` row-major, rows L2-normalised, row 0 zeros. */
export interface TextPriorTable {
  readonly table: Float32Array;
  readonly dims: number;
}

/** Rows per slice of {@link textPriorTableInSlices} (4 MB of a 256-dim table, ~15 ms). */
const TABLE_SLICE_ROWS = 4096;

/** `[N + 1, D]` row-major: the item text vectors (fields side by side), rows L2-normalised, row 0 zeros. */
export function textPriorTable(info: ItemTextTables): TextPriorTable {
  const out = emptyTable(info);
  fillRows(info, out, 1, info.itemCount + 1);
  return out;
}

/**
 * {@link textPriorTable}, the rows copied and normalised a slice at a time with the event loop let
 * in between (at 100,000 items x 256 dims the whole table held a serving event loop ~0.3 s). The
 * same numbers: each row is computed on its own either way.
 */
export async function textPriorTableInSlices(info: ItemTextTables): Promise<TextPriorTable> {
  const out = emptyTable(info);
  await inSlices(info.itemCount, TABLE_SLICE_ROWS, (from, to) => fillRows(info, out, from + 1, to + 1));
  return out;
}

/** D: the text fields' dims side by side. */
function textDims(info: ItemTextTables): number {
  return info.textFields.reduce((d, f) => d + f.dims, 0);
}

function emptyTable(info: ItemTextTables): TextPriorTable {
  const dims = textDims(info);
  if (dims === 0) throw new ValidationError('text prior: the side information has no text fields');
  return { table: new Float32Array((info.itemCount + 1) * dims), dims };
}

/** Rows `from..to - 1` of the table: the fields' rows side by side, then L2-normalised. */
function fillRows(info: ItemTextTables, { table, dims }: TextPriorTable, from: number, to: number): void {
  const [only] = info.textFields;
  if (info.textFields.length === 1 && only) {
    // One field: its rows are the table's, copied at once (a row at a time took ~0.3 s at 100,000 items).
    table.set(only.table.subarray(from * dims, to * dims), from * dims);
  } else {
    for (let r = from; r < to; r++) {
      let offset = r * dims;
      for (const f of info.textFields) {
        table.set(f.table.subarray(r * f.dims, (r + 1) * f.dims), offset);
        offset += f.dims;
      }
    }
  }
  l2NormalizeRows({ data: table.subarray(from * dims, to * dims), rows: to - from, cols: dims });
}

/** Scores the text prior of batches; holds the item text table (as one tensor once it scores: dispose it). */
export class TextPrior {
  readonly settings: TextPriorSettings;
  readonly itemCount: number;
  private readonly host: Float32Array;
  private readonly dims: number;
  /** The table as a tensor, made on first use (a server ranking on the host never needs it; at 100,000 items it is 100 MB). */
  private tensor: tf.Tensor2D | undefined; // [N + 1, D]

  /** `vectors`: the table computed already ({@link textPriorTableInSlices}); else computed here. */
  constructor(info: ItemTextTables, settings: TextPriorSettings, vectors?: TextPriorTable) {
    if (!Number.isFinite(settings.weight) || settings.weight < 0) {
      throw new ValidationError(`text prior: weight must be a finite number >= 0, got ${settings.weight}`, { context: { field: 'weight' } });
    }
    if (!Number.isInteger(settings.lastItems) || settings.lastItems < 1) {
      throw new ValidationError(`text prior: lastItems must be an integer >= 1, got ${settings.lastItems}`, { context: { field: 'lastItems' } });
    }
    if (!TEXT_PRIOR_POOLINGS.includes(settings.pooling)) {
      throw new ValidationError(`text prior: pooling must be one of ${TEXT_PRIOR_POOLINGS.join(', ')}, got ${JSON.stringify(settings.pooling)}`, {
        context: { field: 'pooling' },
      });
    }
    this.settings = settings;
    this.itemCount = info.itemCount;
    const { table, dims } = vectors ?? textPriorTable(info);
    const want = (info.itemCount + 1) * textDims(info);
    if (table.length !== want) throw new ValidationError(`text prior: a table of ${table.length} values for ${info.itemCount} items of ${dims} dims (expected ${want})`);
    this.host = table;
    this.dims = dims;
  }

  private get table(): tf.Tensor2D {
    // Kept: made inside a caller's tf.tidy, it must outlive it.
    this.tensor ??= tf.keep(tf.tensor2d(this.host, [this.itemCount + 1, this.dims]));
    return this.tensor;
  }

  /** The item text vectors it compares ({@link textPriorTable}: `[N + 1, D]`, rows L2-normalised); read, never written. */
  get vectors(): TextPriorTable {
    return { table: this.host, dims: this.dims };
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
    const slots = this.settings.pooling === 'max' ? this.settings.lastItems : 1;
    // Query vectors slot by slot ([slots][B, D]): the j-th latest item (max) or the mean (mean).
    const queries = Array.from({ length: slots }, () => new Float32Array(batch.size * d));
    // Slots a history has no item for (max pooling, short histories) must not win the max.
    const empty = Array.from({ length: slots }, () => new Float32Array(batch.size));
    const zeroed: number[] = [];
    for (let b = 0; b < batch.size; b++) {
      const items = this.queryItems(batch, b);
      for (const [j, item] of items.entries()) {
        if (item > this.itemCount) throw new ValidationError(`text prior: item ${item} is outside 1..${this.itemCount}`);
        const vector = this.host.subarray(item * d, (item + 1) * d);
        if (slots === 1) {
          const query = queries[0] as Float32Array;
          for (let k = 0; k < d; k++) (query[b * d + k] as number) += (vector[k] as number) / items.length;
        } else (queries[j] as Float32Array).set(vector, b * d);
        zeroed.push(b, item);
      }
      // A history without items keeps slot 0 (a zero query, prior 0); unused slots sit below any cosine.
      for (let j = Math.max(1, items.length); j < slots; j++) (empty[j] as Float32Array)[b] = -4;
    }
    // Slot by slot with a running max, so at most two [B, N + 1] tensors live at once.
    let pooled: tf.Tensor2D | undefined;
    for (let j = 0; j < slots; j++) {
      const next = tf.tidy((): tf.Tensor2D => {
        let cosines = tf.matMul(tf.tensor2d(queries[j] as Float32Array, [batch.size, d]), this.table, false, true) as tf.Tensor2D; // [B, N + 1]
        if (j > 0) cosines = tf.add(cosines, tf.tensor2d(empty[j] as Float32Array, [batch.size, 1])) as tf.Tensor2D;
        return pooled ? (tf.maximum(pooled, cosines) as tf.Tensor2D) : cosines;
      });
      pooled?.dispose();
      pooled = next;
    }
    const prior = pooled as tf.Tensor2D;
    if (zeroed.length === 0) return prior;
    return tf.tidy((): tf.Tensor2D => {
      const pairs = zeroed.length / 2;
      const hits = tf.scatterND(tf.tensor2d(Int32Array.from(zeroed), [pairs, 2], 'int32'), tf.ones([pairs]), [batch.size, this.itemCount + 1]); // [B, N + 1]: 1 at query items
      const out = tf.mul(prior, tf.sub(1, hits)) as tf.Tensor2D;
      prior.dispose();
      return out;
    });
  }

  /** `modelScores + weight x prior`. `[B, N + 1]` */
  fuse(modelScores: tf.Tensor2D, batch: SequenceBatch): tf.Tensor2D {
    if (this.settings.weight === 0) return modelScores.clone();
    return tf.tidy(() => tf.add(modelScores, tf.mul(this.scores(batch), this.settings.weight)) as tf.Tensor2D);
  }

  dispose(): void {
    this.tensor?.dispose();
    this.tensor = undefined;
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

/** A comma-separated list of text prior poolings from a flag (`max,mean`); anything else is a ConfigError naming the flag. */
export function parsePoolingList(flag: string, value: string): TextPriorPooling[] {
  const entries = value.split(',').map((v) => v.trim());
  const bad = entries.find((e) => !(TEXT_PRIOR_POOLINGS as readonly string[]).includes(e));
  if (bad !== undefined) {
    throw new ConfigError(`${flag}: expected ${TEXT_PRIOR_POOLINGS.join(' or ')} (or both, comma-separated), got ${JSON.stringify(value)} (bad entry ${JSON.stringify(bad)})`);
  }
  return entries as TextPriorPooling[];
}
