import type { Random } from '../random';
import { batchIndices, makeBatch, type SequenceExamples } from './data';
import type { SequentialRecommender } from './models/contract';
import { AdamW } from './optimizer';
import { trainStep } from './trainStep';

export interface ThroughputOptions {
  readonly batchSize: number;
  readonly maxHistoryLength: number;
  /** Timed steps. */
  readonly steps: number;
  /** Untimed steps first (kernel warm-up). */
  readonly warmupSteps: number;
  readonly rng: Random;
}

export interface ThroughputResult {
  readonly steps: number;
  readonly batchSize: number;
  readonly stepsPerSecond: number;
  readonly samplesPerSecond: number;
  /** Mean loss parts of the timed steps. */
  readonly loss: Record<string, number>;
}

/**
 * Training throughput of a model on real batches (full training steps: loss, gradients,
 * finiteness check, AdamW update), for benchmarks. Updates the model's weights.
 */
export function measureTrainingThroughput(model: SequentialRecommender, examples: SequenceExamples, options: ThroughputOptions): ThroughputResult {
  const optimizer = new AdamW(model.weights, {
    learningRate: 1e-3,
    warmupSteps: 0,
    schedule: 'constant',
    totalSteps: options.steps + options.warmupSteps,
    beta1: 0.9,
    beta2: 0.999,
    epsilon: 1e-8,
    weightDecay: 1e-4,
    weightDecayOn: 'all',
  });
  try {
    const batches = batchIndices(examples.count, options.batchSize, options.rng).filter((b) => b.length === options.batchSize);
    if (batches.length === 0) throw new Error(`measureTrainingThroughput: fewer than ${options.batchSize} examples`);
    const batchAt = (i: number) => makeBatch(examples, batches[i % batches.length] as Int32Array, options.maxHistoryLength);
    for (let i = 0; i < options.warmupSteps; i++) trainStep(model, optimizer, batchAt(i), options.rng);
    const sums: Record<string, number> = {};
    const started = performance.now();
    for (let i = 0; i < options.steps; i++) {
      const outcome = trainStep(model, optimizer, batchAt(options.warmupSteps + i), options.rng);
      for (const [k, v] of Object.entries(outcome.loss)) sums[k] = (sums[k] ?? 0) + v / options.steps;
    }
    const seconds = (performance.now() - started) / 1000;
    return {
      steps: options.steps,
      batchSize: options.batchSize,
      stepsPerSecond: options.steps / seconds,
      samplesPerSecond: (options.steps * options.batchSize) / seconds,
      loss: sums,
    };
  } finally {
    optimizer.dispose();
  }
}
