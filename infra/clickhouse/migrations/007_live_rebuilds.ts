import type { Migration } from '../migrations';

/**
 * `live_rebuilds`: one row per full rebuild the live trainer started (jobs/liveTrainer.ts): why
 * (`trigger`: schedule or drift, with the numbers in `reason`), the candidate it trained from the
 * archive (`semantic_ids_id`, `checkpoint_id`, `train_s`), the events it trained on to catch up
 * with the live model, and the gate: both models scored prequentially on the same windows
 * (`gate_examples` examples, `live_value` and `candidate_value` of `gate_metric`, the `margin`),
 * the `decision` (published, refused, failed) and the version it was published as.
 */
export const migration007: Migration = {
  version: 7,
  name: 'live_rebuilds: the live trainer\'s full rebuilds and their gate',
  statements: [
    `CREATE TABLE IF NOT EXISTS {db}.live_rebuilds (
      run_id String,
      rebuild_id String,
      trigger LowCardinality(String),
      reason String,
      model LowCardinality(String),
      semantic_ids_id String,
      checkpoint_id String,
      train_s Float64,
      catch_up_events UInt64,
      gate_metric LowCardinality(String),
      gate_windows UInt32,
      gate_examples UInt32,
      live_value Nullable(Float64),
      candidate_value Nullable(Float64),
      margin Float64,
      decision LowCardinality(String),
      version Nullable(UInt32),
      detail String,
      started_at DateTime64(3, 'UTC'),
      decided_at DateTime64(3, 'UTC')
    ) ENGINE = ReplacingMergeTree
    ORDER BY (started_at, rebuild_id)`,
  ],
};
