import { DatasetError } from '../errors';
import type { LoadedDataset } from '../datasets';
import type { Random } from '../random';
import { toDenseIds, type ItemIdMapping } from './sideInfo';

/**
 * Training and evaluation examples as plain typed arrays: a history (oldest first) and the next
 * item, in dense item ids. Batches are built from them per step; tensors only exist inside a step.
 */

/** Examples in CSR form: example i has history `items[offsets[i] .. offsets[i+1])` and target `targets[i]`. */
export interface SequenceExamples {
  readonly count: number;
  /** `[count + 1]` */
  readonly offsets: Int32Array;
  /** Full histories (not cut to the model's window), oldest first. */
  readonly items: Int32Array;
  /** `[count]` */
  readonly targets: Int32Array;
}

/** A leave-one-out split of a dataset. */
export interface LeaveOneOutData {
  readonly name: string;
  readonly itemCount: number;
  readonly train: SequenceExamples;
  readonly valid: SequenceExamples;
  readonly test: SequenceExamples;
  /** How the split was made, for run records. */
  readonly protocol: string;
  /**
   * Latest time of a training event (epoch ms; {@link trainingEventCount}), the data watermark of
   * a model trained on this split. Validation and test events, each user's newest, are left out.
   */
  readonly watermarkMs: number;
}

/**
 * One batch as the models take it: histories cut to their last `maxLength` items and
 * LEFT-aligned (padded with 0 at the end), as the reference Collator does.
 */
export interface SequenceBatch {
  /** B */
  readonly size: number;
  /** L */
  readonly maxLength: number;
  /** `[B * L]`: row b holds the last `lengths[b]` history items, then zeros. */
  readonly items: Int32Array;
  /** `[B]`, each in 1..L. */
  readonly lengths: Int32Array;
  /** `[B]`, the item to predict. */
  readonly targets: Int32Array;
}

class ExamplesBuilder {
  private readonly offsets: number[] = [0];
  private items: number[] = [];
  private readonly targets: number[] = [];

  add(history: ArrayLike<number>, target: number): void {
    for (let i = 0; i < history.length; i++) this.items.push(history[i] as number);
    this.offsets.push(this.items.length);
    this.targets.push(target);
  }

  build(): SequenceExamples {
    return {
      count: this.targets.length,
      offsets: Int32Array.from(this.offsets),
      items: Int32Array.from(this.items),
      targets: Int32Array.from(this.targets),
    };
  }
}

/** Builds examples from (history, target) pairs. Histories must not be empty. */
export function examplesFrom(rows: ReadonlyArray<{ history: ArrayLike<number>; target: number }>): SequenceExamples {
  const b = new ExamplesBuilder();
  for (const r of rows) b.add(r.history, r.target);
  return b.build();
}

/** The history of example `i` (a view, no copy). */
export function historyOf(examples: SequenceExamples, i: number): Int32Array {
  return examples.items.subarray(examples.offsets[i] as number, examples.offsets[i + 1] as number);
}

/**
 * How many of a user's `events` (oldest first) are training events: all but the last two (the
 * validation and test targets) when there are at least 3, else all of them. Both kinds of split
 * agree: a shipped split's users (Amazon Scientific) have sequences rebuilt as the training
 * sequence, then the valid target, then the test target.
 */
function trainingEventCount(events: number): number {
  return events >= 3 ? events - 2 : events;
}

/** The latest timestamp of any user's training events (0 when there is none). */
function trainingWatermarkMs(dataset: LoadedDataset): number {
  let latest = 0;
  for (const s of dataset.sequences) {
    const end = trainingEventCount(s.timestamps.length);
    for (let i = 0; i < end; i++) latest = Math.max(latest, s.timestamps[i] as number);
  }
  return latest;
}

/**
 * The leave-one-out split of a dataset in dense ids.
 *
 * - A dataset that ships a split (Amazon Scientific) is used as given: its train rows (every
 *   prefix of each user's training sequence), valid and test rows.
 * - Otherwise (MovieLens) each user's events, already ordered by time, give: test = the last
 *   event after all earlier ones, valid = the one before after all earlier ones, train = every
 *   earlier event after its prefix (at least one item of history). Users with fewer than 3 events
 *   only give training rows.
 *
 * Rows whose history is empty are dropped (a model cannot encode an empty history).
 */
export function leaveOneOutSplit(dataset: LoadedDataset, mapping: ItemIdMapping): LeaveOneOutData {
  const watermarkMs = trainingWatermarkMs(dataset);
  if (dataset.split) {
    const convert = (rows: ReadonlyArray<{ history: string[]; target: string }>): SequenceExamples => {
      const b = new ExamplesBuilder();
      for (const r of rows) {
        if (r.history.length === 0) continue;
        b.add(toDenseIds(mapping, r.history), toDenseIds(mapping, [r.target])[0] as number);
      }
      return b.build();
    };
    return {
      name: dataset.name,
      itemCount: mapping.itemCount,
      train: convert(dataset.split.train),
      valid: convert(dataset.split.valid),
      test: convert(dataset.split.test),
      protocol: `${dataset.name}: shipped leave-one-out split (train rows = every prefix of each training sequence)`,
      watermarkMs,
    };
  }
  const train = new ExamplesBuilder();
  const valid = new ExamplesBuilder();
  const test = new ExamplesBuilder();
  for (const seq of dataset.sequences) {
    const ids = toDenseIds(mapping, seq.itemIds);
    const n = ids.length;
    const trainEnd = trainingEventCount(n);
    for (let t = 1; t < trainEnd; t++) train.add(ids.subarray(0, t), ids[t] as number);
    if (n >= 3) {
      valid.add(ids.subarray(0, n - 2), ids[n - 2] as number);
      test.add(ids.subarray(0, n - 1), ids[n - 1] as number);
    }
  }
  const data = {
    name: dataset.name,
    itemCount: mapping.itemCount,
    train: train.build(),
    valid: valid.build(),
    test: test.build(),
    protocol: `${dataset.name}: per user sorted by time, last event = test, previous = valid, every earlier prefix = train`,
    watermarkMs,
  };
  if (data.train.count === 0) throw new DatasetError(`${dataset.name}: no training rows (every user has fewer than 2 events)`);
  return data;
}

/** What a model trained on `data` has seen, as checkpoints record it. */
export function dataWatermarkOf(data: LeaveOneOutData): { dataset: string; protocol: string; latestEventMs: number; trainExamples: number } {
  return { dataset: data.name, protocol: data.protocol, latestEventMs: data.watermarkMs, trainExamples: data.train.count };
}

/** Builds the batch of the examples at `indices` (histories cut to the last `maxLength` items). */
export function makeBatch(examples: SequenceExamples, indices: ArrayLike<number>, maxLength: number): SequenceBatch {
  const size = indices.length;
  const items = new Int32Array(size * maxLength);
  const lengths = new Int32Array(size);
  const targets = new Int32Array(size);
  for (let b = 0; b < size; b++) {
    const i = indices[b] as number;
    const start = examples.offsets[i] as number;
    const end = examples.offsets[i + 1] as number;
    const from = Math.max(start, end - maxLength);
    items.set(examples.items.subarray(from, end), b * maxLength);
    lengths[b] = end - from;
    targets[b] = examples.targets[i] as number;
  }
  return { size, maxLength, items, lengths, targets };
}

/** Example indices in batches: shuffled with `rng` when given, in order otherwise; the last batch may be smaller. */
export function batchIndices(count: number, batchSize: number, rng?: Random): Int32Array[] {
  const order = Array.from({ length: count }, (_, i) => i);
  if (rng) rng.shuffle(order);
  const out: Int32Array[] = [];
  for (let s = 0; s < count; s += batchSize) out.push(Int32Array.from(order.slice(s, s + batchSize)));
  return out;
}
