import type { Migration } from '../migrations';

/**
 * The ingest archive. ReplacingMergeTree keys make re-inserts after a crash (at-least-once
 * delivery) collapse: query with FINAL, or count(DISTINCT event_id), for exact counts.
 */
export const migration001: Migration = {
  version: 1,
  name: 'ingest archive: interactions, items, dead_letters',
  statements: [
    `CREATE TABLE IF NOT EXISTS {db}.interactions (
      event_id String,
      user_id String,
      item_id String,
      type LowCardinality(String),
      value Nullable(Float64),
      ts DateTime64(3, 'UTC'),
      session_index UInt32,
      source LowCardinality(String),
      context String,
      topic LowCardinality(String),
      partition UInt16,
      offset UInt64,
      ingested_at DateTime64(3, 'UTC')
    ) ENGINE = ReplacingMergeTree
    PARTITION BY toYYYYMM(ts)
    ORDER BY (user_id, ts, event_id)`,
    `CREATE TABLE IF NOT EXISTS {db}.items (
      item_id String,
      ts DateTime64(3, 'UTC'),
      title String,
      brand String,
      categories Array(String),
      description String,
      features Array(String),
      meta String,
      topic LowCardinality(String),
      partition UInt16,
      offset UInt64,
      ingested_at DateTime64(3, 'UTC')
    ) ENGINE = ReplacingMergeTree(ts)
    ORDER BY item_id`,
    `CREATE TABLE IF NOT EXISTS {db}.dead_letters (
      topic LowCardinality(String),
      partition UInt16,
      offset UInt64,
      message_key Nullable(String),
      code LowCardinality(String),
      message String,
      path Nullable(String),
      payload_base64 String,
      payload_bytes UInt32,
      failed_at DateTime64(3, 'UTC')
    ) ENGINE = ReplacingMergeTree
    ORDER BY (topic, partition, offset, code)`,
  ],
};
