import type { Migration } from '../migrations';

/**
 * Training and evaluation tables, for analysts: one row per run (latest state wins), one per
 * epoch or micro-epoch, and one per evaluated metric. Rows carry the run id, the model version
 * (checkpoint id) and the input artifact ids so metrics join to what produced them.
 */
export const migration002: Migration = {
  version: 2,
  name: 'training runs, epochs, evaluation results',
  statements: [
    `CREATE TABLE IF NOT EXISTS {db}.training_runs (
      run_id String,
      model LowCardinality(String),
      dataset String,
      protocol String,
      config String,
      artifacts Map(String, String),
      backend LowCardinality(String),
      backend_reason String,
      train_examples UInt64,
      status LowCardinality(String),
      started_at DateTime64(3, 'UTC'),
      ended_at Nullable(DateTime64(3, 'UTC')),
      epochs UInt32,
      best_epoch Int32,
      best_valid Map(String, Float64),
      checkpoint_id String,
      error String,
      row_version UInt64
    ) ENGINE = ReplacingMergeTree(row_version)
    ORDER BY run_id`,
    `CREATE TABLE IF NOT EXISTS {db}.training_epochs (
      run_id String,
      epoch UInt32,
      steps UInt32,
      samples UInt64,
      loss Float64,
      loss_parts Map(String, Float64),
      samples_per_s Float64,
      duration_s Float64,
      learning_rate Float64,
      skipped_steps UInt32,
      ended_at DateTime64(3, 'UTC')
    ) ENGINE = ReplacingMergeTree
    ORDER BY (run_id, epoch)`,
    `CREATE TABLE IF NOT EXISTS {db}.evaluation_results (
      run_id String,
      model_version String,
      split LowCardinality(String),
      metric LowCardinality(String),
      k UInt16,
      value Float64,
      users_evaluated UInt32,
      exclude_history UInt8,
      epoch Int32,
      evaluated_at DateTime64(3, 'UTC')
    ) ENGINE = ReplacingMergeTree
    ORDER BY (run_id, split, model_version, metric, k)`,
  ],
};
