import type { TrainerConfig, ModelType } from './config';
import type { TextPriorSettings } from './textPrior';

/**
 * What a training run reports, as rows ready for a metrics store (the lead's ClickHouse layer
 * implements {@link TrainingObserver}; tests use {@link InMemoryObserver}). Hooks may be async;
 * the training loop awaits them, so a failing store fails the run instead of being ignored.
 */

export interface RunInfo {
  readonly runId: string;
  readonly model: ModelType;
  readonly config: TrainerConfig;
  /** Dataset name and split protocol. */
  readonly dataset: string;
  readonly protocol: string;
  /** Input artifact ids by role (`semanticIds`, `itemRegistry`, `textEmbeddings.meta`, ...). */
  readonly artifacts: Readonly<Record<string, string>>;
  readonly backend: string;
  readonly backendReason: string;
  readonly trainExamples: number;
  readonly startedAt: Date;
}

export interface EpochRow {
  readonly runId: string;
  /** 0-based. */
  readonly epoch: number;
  readonly steps: number;
  readonly samples: number;
  /** Mean over the epoch's applied steps of every loss part, plus `total`. */
  readonly loss: Readonly<Record<string, number>>;
  readonly samplesPerSecond: number;
  readonly durationSeconds: number;
  /** Learning rate of the epoch's last update. */
  readonly learningRate: number;
  /** Steps skipped because a gradient was not finite. */
  readonly skippedSteps: number;
  readonly endedAt: Date;
}

export type EvaluationSplit = 'valid' | 'test';

export interface EvaluationRow {
  readonly runId: string;
  /** What was evaluated: `<runId>:epoch-<n>` during training, the checkpoint artifact id when saved. */
  readonly modelVersion: string;
  readonly split: EvaluationSplit;
  /** `recall`, `ndcg`, `mrr` or `hit`. */
  readonly metric: string;
  readonly k: number;
  readonly value: number;
  readonly usersEvaluated: number;
  /** Whether history items were removed from the candidates. */
  readonly excludeHistory: boolean;
  /** The text prior fused into the ranking (trainer/textPrior.ts); absent: the model alone. */
  readonly textPrior?: TextPriorSettings;
  readonly epoch: number;
  readonly evaluatedAt: Date;
}

export type RunStatus = 'completed' | 'early_stopped' | 'time_budget' | 'failed';

export interface RunEnd {
  readonly runId: string;
  readonly status: RunStatus;
  readonly endedAt: Date;
  readonly epochs: number;
  /** Epoch whose weights were kept (-1 when no evaluation ran). */
  readonly bestEpoch: number;
  readonly bestValid: Readonly<Record<string, number>>;
  readonly checkpointId?: string;
  readonly error?: string;
}

export interface TrainingObserver {
  runStarted(run: RunInfo): void | Promise<void>;
  epochEnded(row: EpochRow): void | Promise<void>;
  evaluated(rows: readonly EvaluationRow[]): void | Promise<void>;
  runEnded(end: RunEnd): void | Promise<void>;
}

/** Keeps every row in memory (tests, the CLI summary). */
export class InMemoryObserver implements TrainingObserver {
  readonly runs: RunInfo[] = [];
  readonly epochs: EpochRow[] = [];
  readonly evaluations: EvaluationRow[] = [];
  readonly ends: RunEnd[] = [];

  runStarted(run: RunInfo): void {
    this.runs.push(run);
  }
  epochEnded(row: EpochRow): void {
    this.epochs.push(row);
  }
  evaluated(rows: readonly EvaluationRow[]): void {
    this.evaluations.push(...rows);
  }
  runEnded(end: RunEnd): void {
    this.ends.push(end);
  }
}

/** Progress of a run, for progress bars. */
export interface TrainingProgress {
  readonly phase: 'train' | 'evaluate';
  /** 0-based. */
  readonly epoch: number;
  readonly epochs: number;
  /** Steps (train) or users (evaluate) done in this phase. */
  readonly step: number;
  readonly steps: number;
  /** Total loss of the last step (train only). */
  readonly loss?: number;
  readonly samplesPerSecond?: number;
  /** Seconds left in this epoch's phase at the current speed. */
  readonly etaSeconds?: number;
}

export type ProgressCallback = (progress: TrainingProgress) => void;

/** Turns evaluation metrics (`ndcg@10` -> value) into rows. */
export function evaluationRows(
  base: Omit<EvaluationRow, 'metric' | 'k' | 'value'>,
  metrics: Readonly<Record<string, number>>,
): EvaluationRow[] {
  return Object.entries(metrics).map(([key, value]) => {
    const [metric, k] = key.split('@');
    return { ...base, metric: metric as string, k: Number(k), value };
  });
}
