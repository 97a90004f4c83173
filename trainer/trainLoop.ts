import { AbortedError, ConfigError } from '../errors';
import { createLogger } from '../logging';
import type { Random } from '../random';
import type { EvalConfig, TrainConfig } from './config';
import { batchIndices, makeBatch, type LeaveOneOutData } from './data';
import { evaluateFullRanking, type EvaluationResult } from './evaluate';
import type { WeightValues } from './layers/params';
import type { SequentialRecommender } from './models/contract';
import { evaluationRows, type EpochRow, type ProgressCallback, type RunStatus, type TrainingObserver } from './observer';
import { AdamW, adamWSettings, type OptimizerState } from './optimizer';
import { TrainingError, trainStep } from './trainStep';

const log = createLogger('trainer');

/** Steps between two yields to the event loop (progress bars, signals). */
const YIELD_EVERY = 8;

export interface FitOptions {
  readonly model: SequentialRecommender;
  readonly data: LeaveOneOutData;
  /** History window of the model (its `maxHistoryLength`). */
  readonly maxHistoryLength: number;
  readonly train: TrainConfig;
  readonly eval: EvalConfig;
  /** Draws shuffling, negatives, masking and dropout. */
  readonly rng: Random;
  readonly runId: string;
  readonly observer?: TrainingObserver;
  readonly onProgress?: ProgressCallback;
  readonly signal?: AbortSignal;
  /**
   * Awaited after every step (the loop then yields at every step, not every few): work that must
   * go first on this thread holds it (the live trainer's micro-epochs while a rebuilt candidate
   * trains in the background).
   */
  readonly pause?: () => Promise<void>;
  /**
   * Continue from this optimizer state (a checkpoint's moments and step) instead of fresh moments:
   * warm-up goes on from its step, and the linear schedule decays over this run's own steps (from
   * the full rate at the restored step to 0 at its last).
   */
  readonly optimizer?: OptimizerState;
}

export interface FitResult {
  readonly status: Exclude<RunStatus, 'failed'>;
  /** Epochs trained. */
  readonly epochs: number;
  /** Epoch whose weights the model holds now (-1: no evaluation ran, last weights kept). */
  readonly bestEpoch: number;
  readonly bestValid: Record<string, number>;
  readonly history: EpochRow[];
  readonly skippedSteps: number;
  /** The optimizer as it was with the weights kept (the best epoch's): what a later run continuing them resumes. */
  readonly optimizerState: OptimizerState;
}

function checkValidMetric(train: TrainConfig, evalConfig: EvalConfig): void {
  const k = Number(train.validMetric.split('@')[1]);
  if (!evalConfig.ks.includes(k)) {
    throw new ConfigError(`train.validMetric ${train.validMetric} needs k=${k} in eval.ks (got [${evalConfig.ks.join(', ')}])`, {
      context: { field: 'train.validMetric' },
    });
  }
}

async function yieldToEventLoop(): Promise<void> {
  await new Promise<void>((resolve) => setImmediate(resolve));
}

/**
 * Trains with AdamW and the warm-up schedule, evaluates on the validation split every
 * `evalEvery` epochs (full ranking), stops early after `earlyStopPatience` evaluations without a
 * strictly better `validMetric`, and leaves the best evaluated weights in the model.
 */
export async function fitModel(options: FitOptions): Promise<FitResult> {
  const { model, data, train, rng, observer, onProgress, runId } = options;
  checkValidMetric(train, options.eval);
  const stepsPerEpoch = Math.ceil(data.train.count / train.batchSize);
  const resumedAt = options.optimizer?.step ?? 0;
  const optimizer = new AdamW(model.weights, { ...adamWSettings(train, resumedAt + train.epochs * stepsPerEpoch), decayFrom: resumedAt });
  if (options.optimizer) optimizer.restore(options.optimizer);
  let optimizerState: OptimizerState | undefined;
  const started = performance.now();
  const history: EpochRow[] = [];
  let best = Number.NEGATIVE_INFINITY;
  let bestEpoch = -1;
  let bestValid: Record<string, number> = {};
  let bestWeights: Map<string, WeightValues> | undefined;
  let bestOptimizer: OptimizerState | undefined;
  let evaluationsWithoutGain = 0;
  let consecutiveNonFinite = 0;
  let skippedTotal = 0;
  let status: FitResult['status'] = 'completed';
  let epoch = 0;
  try {
    for (; epoch < train.epochs; epoch++) {
      const epochStart = performance.now();
      const sums: Record<string, number> = {};
      let applied = 0;
      let skipped = 0;
      let samples = 0;
      const batches = batchIndices(data.train.count, train.batchSize, rng);
      for (let s = 0; s < batches.length; s++) {
        if (options.signal?.aborted) throw new AbortedError(`training run ${runId} aborted at epoch ${epoch}, step ${s}`);
        const batch = makeBatch(data.train, batches[s] as Int32Array, options.maxHistoryLength);
        const outcome = trainStep(model, optimizer, batch, rng);
        samples += batch.size;
        if (!outcome.applied) {
          skipped++;
          consecutiveNonFinite++;
          log.warn({ runId, epoch, step: s, loss: outcome.loss, gradNorm: outcome.gradNorm }, 'non-finite gradient: step skipped');
          if (consecutiveNonFinite >= train.maxNonFiniteSteps) {
            throw new TrainingError(
              `training run ${runId}: ${consecutiveNonFinite} consecutive steps had non-finite gradients (limit train.maxNonFiniteSteps = ${train.maxNonFiniteSteps}); ` +
                `last loss ${JSON.stringify(outcome.loss)}. Lower train.learningRate or check the inputs.`,
              { context: { runId, epoch, step: s } },
            );
          }
        } else {
          consecutiveNonFinite = 0;
          applied++;
          for (const [k, v] of Object.entries(outcome.loss)) sums[k] = (sums[k] ?? 0) + v;
        }
        if (onProgress) {
          const elapsed = (performance.now() - epochStart) / 1000;
          const rate = samples / Math.max(elapsed, 1e-9);
          onProgress({
            phase: 'train',
            epoch,
            epochs: train.epochs,
            step: s + 1,
            steps: batches.length,
            loss: outcome.loss.total,
            samplesPerSecond: rate,
            etaSeconds: ((batches.length - s - 1) * train.batchSize) / Math.max(rate, 1e-9),
          });
        }
        // With a pause, at every step: whoever holds it gets the thread back within one step.
        if (options.pause || s % YIELD_EVERY === YIELD_EVERY - 1) {
          await yieldToEventLoop();
          await options.pause?.();
        }
      }
      skippedTotal += skipped;
      const duration = (performance.now() - epochStart) / 1000;
      const row: EpochRow = {
        runId,
        epoch,
        steps: batches.length,
        samples,
        loss: Object.fromEntries(Object.entries(sums).map(([k, v]) => [k, v / Math.max(applied, 1)])),
        samplesPerSecond: samples / duration,
        durationSeconds: duration,
        learningRate: optimizer.currentLearningRate,
        skippedSteps: skipped,
        endedAt: new Date(),
      };
      history.push(row);
      log.info({ runId, epoch, loss: row.loss, samplesPerSecond: Math.round(row.samplesPerSecond), seconds: duration }, 'epoch end');
      await observer?.epochEnded(row);

      const lastEpoch = epoch === train.epochs - 1;
      if ((epoch + 1) % train.evalEvery === 0 || lastEpoch) {
        const result = await evaluateValid(options, epoch);
        const value = result.metrics[train.validMetric] as number;
        await observer?.evaluated(
          evaluationRows(
            {
              runId,
              modelVersion: `${runId}:epoch-${epoch}`,
              split: 'valid',
              usersEvaluated: result.users,
              excludeHistory: result.excludeHistory,
              epoch,
              evaluatedAt: new Date(),
            },
            result.metrics,
          ),
        );
        log.info({ runId, epoch, [train.validMetric]: value, best: Math.max(best, value) }, 'validation');
        if (value > best) {
          best = value;
          bestEpoch = epoch;
          bestValid = result.metrics;
          bestWeights = model.getWeights();
          // The optimizer as it was with these weights: what continuing them (micro-epochs) needs.
          bestOptimizer = optimizer.state();
          evaluationsWithoutGain = 0;
        } else if (++evaluationsWithoutGain >= train.earlyStopPatience) {
          status = 'early_stopped';
          epoch++;
          break;
        }
      }
      if (train.timeBudgetSeconds > 0 && (performance.now() - started) / 1000 >= train.timeBudgetSeconds) {
        status = 'time_budget';
        epoch++;
        break;
      }
    }
    optimizerState = bestOptimizer ?? optimizer.state();
  } finally {
    optimizer.dispose();
  }
  if (bestWeights) model.setWeights(bestWeights);
  return { status, epochs: epoch, bestEpoch, bestValid, history, skippedSteps: skippedTotal, optimizerState };
}

async function evaluateValid(options: FitOptions, epoch: number): Promise<EvaluationResult> {
  const { onProgress } = options;
  return evaluateFullRanking(options.model, options.data.valid, options.maxHistoryLength, {
    ks: options.eval.ks,
    excludeHistory: options.eval.excludeHistory,
    batchSize: options.eval.batchSize,
    ...(onProgress
      ? { onBatch: (done: number, total: number) => onProgress({ phase: 'evaluate', epoch, epochs: options.train.epochs, step: done, steps: total }) }
      : {}),
  });
}
