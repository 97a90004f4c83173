import type { BufferedWriter } from '../infra/clickhouse/bufferedWriter';
import type { EpochRow, EvaluationRow, RunEnd, RunInfo, TrainingObserver } from './observer';

/**
 * Writes a training run into the ClickHouse tables `training_runs`, `training_epochs` and
 * `evaluation_results` (infra/clickhouse/migrations/002_training.ts) through a buffered writer:
 * the training loop never waits for ClickHouse, and rows survive an outage (retried, then
 * spooled to disk).
 */
export class ClickHouseTrainingObserver implements TrainingObserver {
  private run: RunInfo | undefined;
  private version = 0;

  constructor(private readonly writer: BufferedWriter) {}

  private runRow(run: RunInfo, end?: RunEnd): object {
    // ReplacingMergeTree(row_version): the last state of a run wins.
    this.version = Math.max(this.version + 1, Date.now());
    return {
      run_id: run.runId,
      model: run.model,
      dataset: run.dataset,
      protocol: run.protocol,
      config: JSON.stringify(run.config),
      artifacts: run.artifacts,
      backend: run.backend,
      backend_reason: run.backendReason,
      train_examples: run.trainExamples,
      status: end ? end.status : 'running',
      started_at: run.startedAt.getTime(),
      ended_at: end ? end.endedAt.getTime() : null,
      epochs: end?.epochs ?? 0,
      best_epoch: end?.bestEpoch ?? -1,
      best_valid: end?.bestValid ?? {},
      checkpoint_id: end?.checkpointId ?? '',
      error: end?.error ?? '',
      row_version: this.version,
    };
  }

  runStarted(run: RunInfo): void {
    this.run = run;
    this.writer.write('training_runs', [this.runRow(run)]);
  }

  epochEnded(row: EpochRow): void {
    const { total, ...parts } = row.loss;
    this.writer.write('training_epochs', [
      {
        run_id: row.runId,
        epoch: row.epoch,
        steps: row.steps,
        samples: row.samples,
        loss: total ?? Object.values(parts).reduce((a, b) => a + b, 0),
        loss_parts: parts,
        samples_per_s: row.samplesPerSecond,
        duration_s: row.durationSeconds,
        learning_rate: row.learningRate,
        skipped_steps: row.skippedSteps,
        ended_at: row.endedAt.getTime(),
      },
    ]);
  }

  evaluated(rows: readonly EvaluationRow[]): void {
    this.writer.write(
      'evaluation_results',
      rows.map((r) => ({
        run_id: r.runId,
        model_version: r.modelVersion,
        split: r.split,
        metric: r.metric,
        k: r.k,
        value: r.value,
        users_evaluated: r.usersEvaluated,
        exclude_history: r.excludeHistory ? 1 : 0,
        text_prior_weight: r.textPrior?.weight ?? 0,
        text_prior_last: r.textPrior?.lastItems ?? 0,
        text_prior_pooling: r.textPrior?.pooling ?? '',
        epoch: r.epoch,
        evaluated_at: r.evaluatedAt.getTime(),
      })),
    );
  }

  runEnded(end: RunEnd): void {
    if (this.run) this.writer.write('training_runs', [this.runRow(this.run, end)]);
  }
}
