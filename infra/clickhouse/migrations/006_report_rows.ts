import type { Migration } from '../migrations';

/**
 * Rows the report (report/) draws beside the training and ingest tables:
 * - `semantic_id_builds`: one row per semantic-ID version, from a full rebuild (`kind` rebuild:
 *   codebooks fitted on every item) or from coding new items with the existing codebooks
 *   (`new_items`: `new_items_rel_mse` is the reconstruction error of the new items alone, the
 *   drift signal); per-level utilization and perplexity as arrays indexed by level;
 * - `freshness_probes`: one row per probe of `npm run bench -- freshness` (`kind` history,
 *   changelog_history, model or new_item), its latency in milliseconds;
 * - `ingest_lag`: per owned partition, the lag read from the broker's high-water mark at each
 *   of ingest's lag checks (`ingest.consumer.lagCheckMs`).
 */
export const migration006: Migration = {
  version: 6,
  name: 'report rows: semantic_id_builds, freshness_probes, ingest_lag',
  statements: [
    `CREATE TABLE IF NOT EXISTS {db}.semantic_id_builds (
      semantic_ids_id String,
      kind LowCardinality(String),
      method LowCardinality(String),
      items UInt32,
      new_items UInt32,
      levels UInt16,
      codes_per_level UInt32,
      fraction_used Array(Float64),
      perplexity Array(Float64),
      collision_rate Float64,
      distinct_codes UInt32,
      max_items_per_code UInt32,
      rel_mse Nullable(Float64),
      new_items_rel_mse Nullable(Float64),
      train_s Float64,
      built_at DateTime64(3, 'UTC')
    ) ENGINE = ReplacingMergeTree
    ORDER BY (built_at, semantic_ids_id)`,
    `CREATE TABLE IF NOT EXISTS {db}.freshness_probes (
      bench_id String,
      kind LowCardinality(String),
      latency_ms Float64,
      measured_at DateTime64(3, 'UTC')
    ) ENGINE = MergeTree
    ORDER BY (bench_id, kind, measured_at)`,
    `CREATE TABLE IF NOT EXISTS {db}.ingest_lag (
      topic LowCardinality(String),
      partition UInt16,
      lag UInt64,
      group_id String,
      measured_at DateTime64(3, 'UTC')
    ) ENGINE = MergeTree
    ORDER BY (topic, partition, measured_at)`,
  ],
};
