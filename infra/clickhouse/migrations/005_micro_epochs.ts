import type { Migration } from '../migrations';

/**
 * One row per micro-epoch (trainer/incremental.ts), from the live loop and from the incremental
 * experiment: `method` is `micro` (fine-tuned on the stream), `static` (the model as trained,
 * scored on the same windows) or `retrain` (a fresh model trained on everything before each
 * window). `prequential` holds the metrics of the model before it saw the window (test, then
 * train); the gate's numbers, the decision and what it cost sit beside them.
 */
export const migration005: Migration = {
  version: 5,
  name: 'micro_epochs',
  statements: [
    `CREATE TABLE IF NOT EXISTS {db}.micro_epochs (
      run_id String,
      method LowCardinality(String),
      micro_epoch UInt32,
      dataset String,
      model LowCardinality(String),
      window_start DateTime64(3, 'UTC'),
      window_end DateTime64(3, 'UTC'),
      events UInt32,
      examples UInt32,
      prequential Map(String, Float64),
      trained UInt32,
      replayed UInt32,
      steps UInt32,
      loss Float64,
      train_s Float64,
      holdout UInt32,
      gate_metric LowCardinality(String),
      live_gate Float64,
      candidate_gate Float64,
      accepted UInt8,
      checkpoint_id String,
      published_version Int64,
      ended_at DateTime64(3, 'UTC')
    ) ENGINE = ReplacingMergeTree
    ORDER BY (run_id, method, micro_epoch)`,
  ],
};
