import { ConfigError, DatasetError } from '../errors';
import type { LoadedDataset } from '../datasets';
import { initTf } from '../infra/tf';
import { createLogger } from '../logging';
import { Random } from '../random';
import { parseTrainerConfig, type TrainerConfig, type TrainerConfigInput } from './config';
import { examplesFrom, historyOf, leaveOneOutSplit, type LeaveOneOutData, type SequenceExamples } from './data';
import { evaluateFullRanking, type EvaluationResult } from './evaluate';
import { IncrementalTrainer, MicroEpochConfig, appendEvents, type MicroEpochResult, type StreamInteraction } from './incremental';
import { createModel } from './models';
import type { SequentialRecommender } from './models/contract';
import { itemIdMappingFromList, type ItemIdMapping, type ItemSideInfo } from './sideInfo';
import { fitModel, type FitResult } from './trainLoop';
import type { z } from 'zod';

const log = createLogger('trainer.incremental');

/**
 * The incremental experiment: does fine-tuning in micro-epochs keep up with retraining? The
 * dataset's interactions in time order; a model trained on the first `trainFraction` of them; the
 * rest streamed in `windows` equal windows. On every window, before any method has trained on it,
 * the same prequential Recall/NDCG@K (each event ranked against the full catalog from the user's
 * history before it) of:
 * - `static`: the first model, never updated;
 * - `micro`: micro-epoch fine-tuning (trainer/incremental.ts) after each window;
 * - `retrain`: a fresh model trained, with the first model's settings, on every interaction
 *   before the window.
 * Training seconds are counted per method (the first model is shared and not counted).
 */

export type IncrementalMethod = 'static' | 'micro' | 'retrain';
export const INCREMENTAL_METHODS: readonly IncrementalMethod[] = ['static', 'micro', 'retrain'];

export interface IncrementalExperimentOptions {
  readonly dataset: LoadedDataset;
  /** The model and how the first model (and each retrain) is trained: `model.type` required. */
  readonly config: TrainerConfigInput | TrainerConfig;
  readonly micro?: z.input<typeof MicroEpochConfig>;
  /** Share of the interactions (in time order) the first model is trained on (default 0.8). */
  readonly trainFraction?: number;
  /** Windows the rest is streamed in (default 10). */
  readonly windows?: number;
  readonly methods?: readonly IncrementalMethod[];
  /**
   * What each retrain trains on: `split` (default) the leave-one-out split of everything before
   * the window, early-stopped on its validation targets, as the first model; `all` everything
   * before the window, each user's last two events included (micro-epochs train on those too),
   * for as many epochs as the first model needed to reach its best one, without early stopping.
   */
  readonly retrainOn?: 'split' | 'all';
  /** CCFRec's side information (dense ids as `itemIds`). */
  readonly sideInfo?: ItemSideInfo;
  readonly itemIds?: ItemIdMapping;
  /** Called after each window of each method. */
  readonly onWindow?: (row: IncrementalWindowRow) => void | Promise<void>;
  readonly signal?: AbortSignal;
}

/** One method on one window. */
export interface IncrementalWindowRow {
  readonly method: IncrementalMethod;
  readonly window: number;
  readonly windowStartMs: number;
  readonly windowEndMs: number;
  /** The stream position once the window is read: `stream` -> the dataset's interactions (time order) before the window's end, the first model's included. */
  readonly watermark: Readonly<Record<string, number>>;
  readonly events: number;
  readonly examples: number;
  /** Prequential metrics (before the method trained on the window); empty without examples. */
  readonly metrics: Record<string, number>;
  /** Seconds this method spent training for this window (micro: after it; retrain: before it). */
  readonly trainSeconds: number;
  readonly steps: number;
  /** Examples this method's training steps went through for this window (a CPU-load-free measure of its compute). */
  readonly trainSamples: number;
  /** micro: the micro-epoch's details. */
  readonly micro?: MicroEpochResult;
}

export interface IncrementalMethodSummary {
  /** Prequential metrics over every streamed example (windows weighted by their examples). */
  readonly metrics: Record<string, number>;
  readonly examples: number;
  readonly trainSeconds: number;
  readonly trainSamples: number;
}

export interface IncrementalExperimentResult {
  readonly dataset: string;
  readonly model: string;
  readonly events: number;
  readonly trainEvents: number;
  readonly streamEvents: number;
  readonly windows: number;
  /** Seconds the first model took (shared by every method). */
  readonly firstModelSeconds: number;
  readonly firstModelEpochs: number;
  /** The first model's best epoch (0-based): its weights are the ones streamed from. */
  readonly firstModelBestEpoch: number;
  readonly methods: Partial<Record<IncrementalMethod, IncrementalMethodSummary>>;
  readonly rows: IncrementalWindowRow[];
}

interface TimedEvent {
  readonly user: number;
  readonly position: number;
  readonly item: string;
  readonly timestampMs: number;
}

/** Every interaction in time order (ties: by user, then position in the user's sequence). */
function eventsInTimeOrder(dataset: LoadedDataset): TimedEvent[] {
  const events: TimedEvent[] = [];
  dataset.sequences.forEach((s, user) => s.itemIds.forEach((item, position) => events.push({ user, position, item, timestampMs: s.timestamps[position] as number })));
  events.sort((a, b) => a.timestampMs - b.timestampMs || a.user - b.user || a.position - b.position);
  return events;
}

/** The dataset as it was when `events` (a time-order prefix) had happened. */
function datasetOf(dataset: LoadedDataset, events: readonly TimedEvent[]): LoadedDataset {
  const counts = new Int32Array(dataset.sequences.length);
  for (const e of events) counts[e.user] = Math.max(counts[e.user] as number, e.position + 1);
  const sequences = dataset.sequences
    .map((s, u) => ({ ...s, itemIds: s.itemIds.slice(0, counts[u]), timestamps: s.timestamps.slice(0, counts[u]), ...(s.values ? { values: s.values.slice(0, counts[u]) } : {}) }))
    .filter((s) => s.itemIds.length > 0);
  const { split: _ignored, ...rest } = dataset;
  return { ...rest, sequences };
}

/** `data` with its validation and test examples trained on too (each user's last two events). */
function withHeldOutTrained(data: LeaveOneOutData): LeaveOneOutData {
  const rows: Array<{ history: Int32Array; target: number }> = [];
  for (const examples of [data.train, data.valid, data.test]) for (let i = 0; i < examples.count; i++) rows.push({ history: historyOf(examples, i), target: examples.targets[i] as number });
  return { ...data, train: examplesFrom(rows), protocol: `${data.protocol}; validation and test targets trained on too` };
}

function weightedMean(rows: readonly IncrementalWindowRow[]): { metrics: Record<string, number>; examples: number } {
  const sums: Record<string, number> = {};
  let examples = 0;
  for (const r of rows) {
    if (r.examples === 0) continue;
    examples += r.examples;
    for (const [k, v] of Object.entries(r.metrics)) sums[k] = (sums[k] ?? 0) + v * r.examples;
  }
  return { metrics: Object.fromEntries(Object.entries(sums).map(([k, v]) => [k, v / Math.max(examples, 1)])), examples };
}

export async function runIncrementalExperiment(options: IncrementalExperimentOptions): Promise<IncrementalExperimentResult> {
  await initTf();
  const config = parseTrainerConfig(options.config);
  const micro = MicroEpochConfig.parse(options.micro ?? {});
  const fraction = options.trainFraction ?? 0.8;
  const windowCount = options.windows ?? 10;
  const methods = options.methods ?? INCREMENTAL_METHODS;
  if (!(fraction > 0 && fraction < 1)) throw new ConfigError(`trainFraction must be in (0, 1), got ${fraction}`, { context: { field: 'trainFraction' } });
  if (!Number.isInteger(windowCount) || windowCount < 1) throw new ConfigError(`windows must be a positive integer, got ${windowCount}`, { context: { field: 'windows' } });
  if (config.model.type === 'ccfrec' && !options.sideInfo) throw new ConfigError('the incremental experiment with CCFRec needs the side information of a rebuild (semantic IDs, text)');
  const { dataset } = options;
  const itemIds = options.itemIds ?? itemIdMappingFromList(dataset.items.map((i) => i.itemId));
  const L = config.model.maxHistoryLength;
  const all = eventsInTimeOrder(dataset);
  const cut = Math.floor(all.length * fraction);
  const streamEvents = all.length - cut;
  if (cut === 0 || streamEvents < windowCount) throw new DatasetError(`${dataset.name}: ${all.length} interactions cannot give a first model and ${windowCount} windows`);
  const dense = (item: string): number => {
    const id = itemIds.denseId(item);
    if (id === undefined) throw new DatasetError(`${dataset.name}: item ${JSON.stringify(item)} of an interaction is not in the catalog`);
    return id;
  };
  const toStream = (e: TimedEvent): StreamInteraction => ({ userId: dataset.sequences[e.user]?.userId as string, item: dense(e.item), timestampMs: e.timestampMs });
  const bounds = Array.from({ length: windowCount + 1 }, (_, w) => cut + Math.round((w * streamEvents) / windowCount));
  const windows = Array.from({ length: windowCount }, (_, w) => all.slice(bounds[w], bounds[w + 1]).map(toStream));

  /**
   * A model trained from scratch, with the experiment's settings, on the interactions before `end`:
   * on their leave-one-out split (early-stopped on its validation targets), or with `epochs`, on
   * every one of them for that many epochs (validated only after the last, so the last is kept).
   */
  const trainUpTo = async (end: number, seed: number, epochs?: number): Promise<{ model: SequentialRecommender; fit: FitResult; seconds: number; data: ReturnType<typeof leaveOneOutSplit> }> => {
    const started = performance.now();
    const split = leaveOneOutSplit(datasetOf(dataset, all.slice(0, end)), itemIds);
    const data = epochs === undefined ? split : withHeldOutTrained(split);
    const train = epochs === undefined ? config.train : { ...config.train, epochs, evalEvery: epochs };
    const rng = new Random(seed);
    const model = createModel(config.model, { itemCount: data.itemCount, ...(options.sideInfo ? { sideInfo: options.sideInfo } : {}) }, rng.fork());
    const fit = await fitModel({ model, data, maxHistoryLength: L, train, eval: config.eval, rng: rng.fork(), runId: `incremental-${dataset.name}-upto-${end}`, ...(options.signal ? { signal: options.signal } : {}) });
    return { model, fit, seconds: (performance.now() - started) / 1000, data };
  };

  // Each window's examples: every event with the user's history (last L items) before it, as the
  // micro-epochs make them.
  const histories = new Map<string, number[]>();
  appendEvents(histories, all.slice(0, cut).map(toStream), L);
  const seededHistories = [...histories].map(([u, h]) => [u, [...h]] as const);
  const windowExamples: SequenceExamples[] = windows.map((events) => examplesFrom(appendEvents(histories, events, L).rows));
  const evaluate = async (model: SequentialRecommender, examples: SequenceExamples): Promise<EvaluationResult | undefined> =>
    examples.count > 0 ? evaluateFullRanking(model, examples, L, { ks: micro.ks, excludeHistory: false, batchSize: config.eval.batchSize }) : undefined;

  log.info({ dataset: dataset.name, events: all.length, train: cut, stream: streamEvents, windows: windowCount }, 'incremental experiment: first model');
  const first = await trainUpTo(cut, config.train.seed);
  const rows: IncrementalWindowRow[] = [];
  const emit = async (row: IncrementalWindowRow): Promise<void> => {
    rows.push(row);
    await options.onWindow?.(row);
  };
  const base = (w: number): Pick<IncrementalWindowRow, 'window' | 'windowStartMs' | 'windowEndMs' | 'watermark' | 'events' | 'examples'> => ({
    window: w,
    windowStartMs: windows[w]?.[0]?.timestampMs ?? 0,
    windowEndMs: windows[w]?.at(-1)?.timestampMs ?? 0,
    watermark: { stream: bounds[w + 1] as number },
    events: windows[w]?.length ?? 0,
    examples: windowExamples[w]?.count ?? 0,
  });
  try {
    if (methods.includes('static')) {
      for (let w = 0; w < windowCount; w++) {
        const result = await evaluate(first.model, windowExamples[w] as SequenceExamples);
        await emit({ method: 'static', ...base(w), metrics: result?.metrics ?? {}, trainSeconds: 0, steps: 0, trainSamples: 0 });
      }
    }
    if (methods.includes('micro')) {
      const model = createModel(config.model, { itemCount: first.data.itemCount, ...(options.sideInfo ? { sideInfo: options.sideInfo } : {}) }, new Random(0));
      model.setWeights(first.model.getWeights());
      const trainer = new IncrementalTrainer({ model, maxHistoryLength: L, micro, train: config.train, rng: new Random(config.train.seed + 1), optimizer: first.fit.optimizerState, evalBatchSize: config.eval.batchSize });
      try {
        trainer.seed(seededHistories, first.data.train, [first.data.valid, first.data.test]);
        for (let w = 0; w < windowCount; w++) {
          if (options.signal?.aborted) break;
          const result = await trainer.microEpoch(windows[w] as StreamInteraction[]);
          const check = base(w);
          if (result.examples !== check.examples) throw new Error(`incremental experiment: window ${w} made ${result.examples} examples in the trainer, ${check.examples} here`);
          await emit({ method: 'micro', ...check, metrics: result.prequential?.metrics ?? {}, trainSeconds: result.computeSeconds, steps: result.steps, trainSamples: result.samples, micro: result });
        }
      } finally {
        trainer.dispose();
        model.dispose();
      }
    }
    if (methods.includes('retrain')) {
      for (let w = 0; w < windowCount; w++) {
        if (options.signal?.aborted) break;
        // Window 0's retrain is the first model itself (trained on everything before it).
        const fresh = w === 0 ? undefined : await trainUpTo(bounds[w] as number, config.train.seed, options.retrainOn === 'all' ? first.fit.bestEpoch + 1 : undefined);
        try {
          const result = await evaluate(fresh?.model ?? first.model, windowExamples[w] as SequenceExamples);
          await emit({
            method: 'retrain',
            ...base(w),
            metrics: result?.metrics ?? {},
            trainSeconds: fresh?.seconds ?? 0,
            steps: fresh ? fresh.fit.history.reduce((n, e) => n + e.steps, 0) : 0,
            trainSamples: fresh ? fresh.fit.history.reduce((n, e) => n + e.samples, 0) : 0,
          });
          log.info({ window: w, epochs: fresh?.fit.epochs ?? first.fit.epochs, seconds: fresh?.seconds ?? 0, ndcg10: result?.metrics['ndcg@10'] }, 'retrained');
        } finally {
          fresh?.model.dispose();
        }
      }
    }
  } finally {
    first.model.dispose();
  }
  const summaries: Partial<Record<IncrementalMethod, IncrementalMethodSummary>> = {};
  for (const method of methods) {
    const mine = rows.filter((r) => r.method === method);
    const { metrics, examples } = weightedMean(mine);
    summaries[method] = { metrics, examples, trainSeconds: mine.reduce((s, r) => s + r.trainSeconds, 0), trainSamples: mine.reduce((s, r) => s + r.trainSamples, 0) };
  }
  return {
    dataset: dataset.name,
    model: config.model.type,
    events: all.length,
    trainEvents: cut,
    streamEvents,
    windows: windowCount,
    firstModelSeconds: first.seconds,
    firstModelEpochs: first.fit.epochs,
    firstModelBestEpoch: first.fit.bestEpoch,
    methods: summaries,
    rows,
  };
}
