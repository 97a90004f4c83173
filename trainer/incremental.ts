import { z } from 'zod';
import { ConfigError } from '../errors';
import type { Random } from '../random';
import { metricName, type TrainConfig } from './config';
import { examplesFrom, historyOf, makeBatch, type SequenceExamples } from './data';
import { evaluateFullRanking, type EvaluationResult } from './evaluate';
import type { WeightValues } from './layers/params';
import type { SequentialRecommender } from './models/contract';
import { AdamW, adamWSettings, type OptimizerState } from './optimizer';
import { trainStep } from './trainStep';

/**
 * Micro-epochs: a trained model follows the stream. Each micro-epoch takes the interactions that
 * arrived since the last one (in time order) and
 *
 * 1. scores the live model on them first (prequential: test, then train): every event whose user
 *    has a history is ranked against the full catalog from the history before it;
 * 2. holds out the last event of a sample of the window's users (the gate's recent slice; trained
 *    at the next micro-epoch, so no event is left out of training);
 * 3. fine-tunes from the live weights and the optimizer's running state (moments, step: the
 *    schedule goes on, no new warm-up) on the window's other events plus the previous window's
 *    held-out ones, each batch mixed with a replay sample of older examples (a bounded uniform
 *    reservoir), for a bounded number of steps;
 * 4. gates: the fine-tuned model must not be worse than the live one on the held-out slice by more
 *    than a margin on the gate metric; otherwise the weights and optimizer go back to the live
 *    ones. The decision and both numbers are in the result.
 *
 * Memory is bounded: per user the last `maxHistoryLength` items, the reservoir's examples, and one
 * window. Compute is bounded by `maxSteps` per micro-epoch.
 */

export const MicroEpochConfig = z
  .strictObject({
    maxSteps: z.number().int().min(1).default(40).describe('Most optimiser steps in one micro-epoch (bounds its compute).'),
    passes: z.number().positive().default(2).describe("Passes over the window's new examples, within maxSteps."),
    batchSize: z.number().int().min(2).default(128).describe('Examples per step, new and replayed together.'),
    learningRate: z.number().positive().default(3e-4).describe('AdamW peak learning rate while fine-tuning (the schedule continues from the live run: no new warm-up).'),
    replayRatio: z.number().min(0).max(16).default(1).describe('Replayed older examples per new example in each batch (0: new examples only).'),
    replayCapacity: z.number().int().min(0).default(50_000).describe('Older examples kept for replay: a uniform reservoir sample of every example trained on.'),
    holdoutFraction: z
      .number()
      .min(0)
      .max(0.5)
      .default(0.1)
      .describe("Share of the window's users whose last event is held out for the gate (and trained at the next micro-epoch)."),
    minHoldout: z
      .number()
      .int()
      .min(0)
      .default(100)
      .describe('Held-out events the gate decides on at least (when the window has twice as many users; else half of them).'),
    gateMetric: metricName.default('ndcg@10').describe('What the gate compares on the held-out slice.'),
    gateMargin: z.number().min(0).default(0.01).describe('How far (absolute) below the live model the fine-tuned one may be on the gate metric and still pass.'),
    ks: z.array(z.number().int().min(1)).min(1).default([10, 20]).describe('Cut-offs of the prequential and held-out metrics.'),
    maxPending: z
      .number()
      .int()
      .min(0)
      .default(100_000)
      .describe('Most examples kept to train again after refused micro-epochs (beyond it the oldest are dropped and counted).'),
  })
  .describe('Micro-epoch fine-tuning on the stream.');
export type MicroEpochConfig = z.infer<typeof MicroEpochConfig>;

/** One interaction as the micro-epochs take it: dense item id, in time order. */
export interface StreamInteraction {
  readonly userId: string;
  readonly item: number;
  readonly timestampMs: number;
}

export interface MicroEpochResult {
  readonly microEpoch: number;
  /** Interactions in the window, and the examples they made (events of users with a history). */
  readonly events: number;
  readonly examples: number;
  /** First and last event time of the window (epoch ms); the last is the watermark once it is trained. */
  readonly windowStartMs: number;
  readonly windowEndMs: number;
  /** The live model on the window before training on it (empty with no examples). */
  readonly prequential: EvaluationResult | undefined;
  /** Examples trained on (the window's minus the held-out ones, plus the previous window's held-out) and replayed. */
  readonly trained: number;
  readonly replayed: number;
  readonly steps: number;
  /** Examples the steps went through: steps x batchSize (new and replayed). */
  readonly samples: number;
  readonly skippedSteps: number;
  /** Mean training loss over the steps. */
  readonly loss: number;
  readonly trainSeconds: number;
  /** Held-out slice: its size and the gate metric of the live and the fine-tuned model. */
  readonly holdout: number;
  readonly liveGate: number;
  readonly candidateGate: number;
  /** Every metric of the live and the fine-tuned model on the held-out slice (empty without one). */
  readonly liveHoldout: Record<string, number>;
  readonly candidateHoldout: Record<string, number>;
  /** Whether the fine-tuned weights were kept (gate passed, or nothing to gate on). */
  readonly accepted: boolean;
  /** Seconds of the whole micro-epoch, and of what it adds to scoring the window: fine-tuning and the gate. */
  readonly seconds: number;
  readonly computeSeconds: number;
}

export interface IncrementalTrainerOptions {
  readonly model: SequentialRecommender;
  readonly maxHistoryLength: number;
  readonly micro: MicroEpochConfig;
  /** The live run's training settings (AdamW betas, decay, schedule); the learning rate is `micro.learningRate`. */
  readonly train: TrainConfig;
  readonly rng: Random;
  /** The live run's optimizer where it stopped (a checkpoint's training state); fresh moments without it. */
  readonly optimizer?: OptimizerState;
  readonly evalBatchSize?: number;
}

/**
 * Appends `events` (time order) to the users' `histories` (dense ids, oldest first, the last
 * `maxLength` kept) and returns the examples they make: every event of a user who has a history,
 * with that history as it was before the event, and the user of each.
 */
export function appendEvents(
  histories: Map<string, number[]>,
  events: readonly StreamInteraction[],
  maxLength: number,
): { rows: Array<{ history: Int32Array; target: number }>; users: string[] } {
  const rows: Array<{ history: Int32Array; target: number }> = [];
  const users: string[] = [];
  for (const e of events) {
    let history = histories.get(e.userId);
    if (!history) {
      history = [];
      histories.set(e.userId, history);
    }
    if (history.length > 0) {
      rows.push({ history: Int32Array.from(history), target: e.item });
      users.push(e.userId);
    }
    history.push(e.item);
    if (history.length > maxLength) history.splice(0, history.length - maxLength);
  }
  return { rows, users };
}

/** A bounded uniform sample of every example offered to it (reservoir sampling). */
class Reservoir {
  private readonly histories: Int32Array[] = [];
  private readonly targets: number[] = [];
  private offered = 0;

  constructor(
    private readonly capacity: number,
    private readonly rng: Random,
  ) {}

  get size(): number {
    return this.targets.length;
  }

  offer(history: Int32Array, target: number): void {
    this.offered++;
    if (this.capacity === 0) return;
    if (this.targets.length < this.capacity) {
      this.histories.push(history);
      this.targets.push(target);
      return;
    }
    const slot = this.rng.int(this.offered);
    if (slot < this.capacity) {
      this.histories[slot] = history;
      this.targets[slot] = target;
    }
  }

  sample(): { history: Int32Array; target: number } {
    const i = this.rng.int(this.targets.length);
    return { history: this.histories[i] as Int32Array, target: this.targets[i] as number };
  }
}

export class IncrementalTrainer {
  private readonly histories = new Map<string, number[]>();
  private readonly reservoir: Reservoir;
  private pending: Array<{ history: Int32Array; target: number }> = [];
  private optimizer: AdamW;
  private model: SequentialRecommender;
  private count = 0;
  private dropped = 0;
  private disposed = false;

  constructor(private readonly options: IncrementalTrainerOptions) {
    const { micro } = options;
    if (!micro.ks.includes(Number(micro.gateMetric.split('@')[1]))) {
      throw new ConfigError(`micro.gateMetric ${micro.gateMetric} needs its k in micro.ks (got [${micro.ks.join(', ')}])`, { context: { field: 'micro.gateMetric' } });
    }
    this.reservoir = new Reservoir(micro.replayCapacity, options.rng);
    this.model = options.model;
    this.optimizer = this.optimizerFor(options.model, options.optimizer);
  }

  /** AdamW over the model's weights; the schedule runs on from the live run's step (constant after its warm-up). */
  private optimizerFor(model: SequentialRecommender, state: OptimizerState | undefined): AdamW {
    const { micro, train } = this.options;
    const optimizer = new AdamW(model.weights, { ...adamWSettings(train, Number.MAX_SAFE_INTEGER), learningRate: micro.learningRate, schedule: 'constant' });
    if (state) optimizer.restore(state);
    return optimizer;
  }

  /**
   * Continues with another model of the same weights' shapes, e.g. the same weights over a grown
   * catalog (CCFRec scores new items from their codes and text): histories, replay and pending
   * examples are kept, the optimizer continues from `optimizer`. The caller owns both models.
   */
  replaceModel(model: SequentialRecommender, optimizer: OptimizerState | undefined): void {
    this.checkLive();
    const next = this.optimizerFor(model, optimizer);
    this.optimizer.dispose();
    this.optimizer = next;
    this.model = model;
  }

  /** Examples waiting to be trained (held out by the last micro-epoch, or all of a refused one). */
  get pendingExamples(): number {
    return this.pending.length;
  }

  /** The waiting examples (dense ids), what a checkpoint keeps so that a restart trains them too. */
  pendingRows(): Array<{ history: number[]; target: number }> {
    return this.pending.map((r) => ({ history: Array.from(r.history), target: r.target }));
  }

  /** Examples dropped because more than maxPending waited. */
  get droppedExamples(): number {
    return this.dropped;
  }

  get replaySize(): number {
    return this.reservoir.size;
  }

  /** The optimizer where it is now (what a checkpoint keeps to continue from here). */
  optimizerState(): OptimizerState {
    return this.optimizer.state();
  }

  /** The user's current history (dense ids, oldest first, at most maxHistoryLength). */
  historyOf(userId: string): readonly number[] {
    return this.histories.get(userId) ?? [];
  }

  /**
   * What the live model already knows: users' histories (dense ids, oldest first) and examples it
   * was trained on (replayed from now on). `untrained` examples (e.g. the live run's validation
   * and test rows) are trained at the next micro-epoch.
   */
  seed(histories: Iterable<readonly [string, ArrayLike<number>]>, trained?: SequenceExamples, untrained?: readonly SequenceExamples[]): void {
    const L = this.options.maxHistoryLength;
    for (const [user, items] of histories) this.histories.set(user, Array.from(items).slice(-L));
    const cut = (examples: SequenceExamples, i: number): Int32Array => historyOf(examples, i).slice(-L);
    if (trained) for (let i = 0; i < trained.count; i++) this.reservoir.offer(cut(trained, i), trained.targets[i] as number);
    for (const examples of untrained ?? []) for (let i = 0; i < examples.count; i++) this.pending.push({ history: cut(examples, i), target: examples.targets[i] as number });
  }

  /**
   * Offers examples the live model was trained on to the replay reservoir (a uniform sample of
   * them is kept, `replayCapacity`): e.g. rebuilt from the archive when a trainer starts, so its
   * first micro-epochs replay what the model learnt before instead of only the stream since.
   */
  seedReplay(rows: Iterable<{ readonly history: ArrayLike<number>; readonly target: number }>): void {
    const L = this.options.maxHistoryLength;
    for (const r of rows) this.reservoir.offer(Int32Array.from(r.history).slice(-L), r.target);
  }

  /** Appends the window's interactions to the histories and returns its examples, with the user of each. */
  private absorb(events: readonly StreamInteraction[]): { rows: Array<{ history: Int32Array; target: number }>; users: string[] } {
    return appendEvents(this.histories, events, this.options.maxHistoryLength);
  }

  /** The live model's full-ranking metrics on examples. */
  evaluate(examples: SequenceExamples): Promise<EvaluationResult> {
    return evaluateFullRanking(this.model, examples, this.options.maxHistoryLength, {
      ks: this.options.micro.ks,
      excludeHistory: false,
      batchSize: this.options.evalBatchSize ?? 512,
    });
  }

  /** One micro-epoch over `events` (time order): prequential metrics, fine-tuning, gate. */
  async microEpoch(events: readonly StreamInteraction[]): Promise<MicroEpochResult> {
    this.checkLive();
    const started = performance.now();
    const { micro, rng } = this.options;
    const model = this.model;
    const { rows, users } = this.absorb(events);
    const window = examplesFrom(rows);
    const prequential = rows.length > 0 ? await this.evaluate(window) : undefined;
    const computeStarted = performance.now();

    // The held-out slice: the last example of a sample of the window's users.
    const lastOf = new Map<string, number>();
    users.forEach((u, i) => lastOf.set(u, i));
    // A sample of the window's users: holdoutFraction of them, but at least minHoldout (at most
    // half of them) so that the gate does not decide on a handful of events.
    const candidates = rng.shuffle([...lastOf.values()]);
    const wanted = micro.holdoutFraction === 0 ? 0 : Math.max(Math.ceil(micro.holdoutFraction * candidates.length), Math.min(micro.minHoldout, Math.floor(candidates.length / 2)));
    const heldOut = new Set<number>(candidates.slice(0, wanted));
    const holdoutRows = [...heldOut].sort((a, b) => a - b).map((i) => rows[i] as { history: Int32Array; target: number });
    // A window without examples (only new users' first events) holds nothing out: training the
    // waiting examples on it would be kept, and published, without a gate. They wait for the
    // next window that can be gated (unless the gate is off: holdoutFraction 0).
    const ungated = rows.length === 0 && micro.holdoutFraction > 0;
    const trainRows = ungated ? [] : [...this.pending, ...rows.filter((_, i) => !heldOut.has(i))];
    const holdout = examplesFrom(holdoutRows);
    const metric = micro.gateMetric;
    const liveHoldout = holdout.count > 0 ? (await this.evaluate(holdout)).metrics : {};
    const liveGate = liveHoldout[metric] ?? Number.NaN;

    const snapshot: { weights: Map<string, WeightValues>; optimizer: OptimizerState } | undefined = holdout.count > 0 ? { weights: model.getWeights(), optimizer: this.optimizer.state() } : undefined;
    const trainStarted = performance.now();
    const fit = await this.fineTune(trainRows);
    const trainSeconds = (performance.now() - trainStarted) / 1000;
    const candidateHoldout = holdout.count > 0 ? (await this.evaluate(holdout)).metrics : {};
    const candidateGate = candidateHoldout[metric] ?? Number.NaN;
    const accepted = snapshot === undefined || candidateGate >= liveGate - micro.gateMargin;
    if (accepted) {
      for (const r of trainRows) this.reservoir.offer(r.history, r.target);
      if (!ungated) this.pending = holdoutRows;
    } else if (snapshot) {
      // Refused: back to the live weights and optimizer; nothing of this window was learnt, so all
      // of it is trained again with the next window (the oldest beyond maxPending dropped).
      model.setWeights(snapshot.weights);
      this.optimizer.restore(snapshot.optimizer);
      this.pending = [...trainRows, ...holdoutRows];
      const excess = this.pending.length - micro.maxPending;
      if (excess > 0) {
        this.dropped += excess;
        this.pending = this.pending.slice(excess);
      }
    }
    const result: MicroEpochResult = {
      microEpoch: this.count++,
      events: events.length,
      examples: rows.length,
      windowStartMs: events[0]?.timestampMs ?? 0,
      windowEndMs: events[events.length - 1]?.timestampMs ?? 0,
      prequential,
      trained: trainRows.length,
      replayed: fit.replayed,
      steps: fit.steps,
      samples: fit.steps * micro.batchSize,
      skippedSteps: fit.skipped,
      loss: fit.loss,
      trainSeconds,
      holdout: holdout.count,
      liveGate,
      candidateGate,
      liveHoldout,
      candidateHoldout,
      accepted,
      seconds: (performance.now() - started) / 1000,
      computeSeconds: (performance.now() - computeStarted) / 1000,
    };
    return result;
  }

  /** Bounded fine-tuning: new examples (shuffled, up to `passes` times) mixed with replayed ones in every batch. */
  private async fineTune(rows: ReadonlyArray<{ history: Int32Array; target: number }>): Promise<{ steps: number; skipped: number; loss: number; replayed: number }> {
    const { micro, rng, maxHistoryLength } = this.options;
    const model = this.model;
    if (rows.length === 0) return { steps: 0, skipped: 0, loss: Number.NaN, replayed: 0 };
    const replayShare = this.reservoir.size > 0 ? micro.replayRatio / (1 + micro.replayRatio) : 0;
    const perStepNew = Math.max(1, Math.round(micro.batchSize * (1 - replayShare)));
    const perStepReplay = micro.batchSize - perStepNew;
    const steps = Math.min(micro.maxSteps, Math.ceil((micro.passes * rows.length) / perStepNew));
    const order = rng.shuffle(Array.from({ length: rows.length }, (_, i) => i));
    let cursor = 0;
    let lossSum = 0;
    let applied = 0;
    let skipped = 0;
    let replayed = 0;
    for (let s = 0; s < steps; s++) {
      const batchRows: Array<{ history: Int32Array; target: number }> = [];
      for (let j = 0; j < perStepNew; j++) {
        if (cursor === order.length) {
          rng.shuffle(order);
          cursor = 0;
        }
        batchRows.push(rows[order[cursor++] as number] as { history: Int32Array; target: number });
      }
      for (let j = 0; j < perStepReplay; j++) batchRows.push(this.reservoir.sample());
      replayed += perStepReplay;
      const examples = examplesFrom(batchRows);
      const batch = makeBatch(examples, Int32Array.from({ length: examples.count }, (_, i) => i), maxHistoryLength);
      const outcome = trainStep(model, this.optimizer, batch, rng);
      if (outcome.applied) {
        applied++;
        lossSum += outcome.loss.total as number;
      } else skipped++;
      // Every step lets the event loop run (a step computes synchronously): in one process with
      // ingest and serving (streamrec run), they go on between steps.
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    return { steps, skipped, loss: applied > 0 ? lossSum / applied : Number.NaN, replayed };
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.optimizer.dispose();
  }

  private checkLive(): void {
    if (this.disposed) throw new Error('incremental trainer: used after dispose');
  }
}
