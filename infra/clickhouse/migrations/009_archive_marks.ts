import type { Migration } from '../migrations';

/**
 * `archive_marks`: per topic and partition, the offset below which ingest has archived every
 * message (or dead-lettered it): written by each flush once all its archive inserts are done,
 * before the consumer commits. A flush inserts its rows in concurrent chunks, and an insert that
 * spans months lands as one part per month, so rows of later offsets can be visible before earlier
 * ones; readers that go by offsets (the live trainer, the first model's snapshot) read below the
 * marks only (within a topic that has marks, a partition without one reads nothing: its rows are
 * not known to be gap-free). The latest mark of a partition is its greatest `next_offset` (merges
 * keep that row). Applied to an archive from before marks, it marks every partition as archived so
 * far.
 */
export const migration009: Migration = {
  version: 9,
  name: 'archive_marks: how far each partition is archived without gaps',
  statements: [
    `CREATE TABLE IF NOT EXISTS {db}.archive_marks (
      topic LowCardinality(String),
      partition UInt32,
      next_offset UInt64,
      marked_at DateTime64(3, 'UTC')
    ) ENGINE = ReplacingMergeTree(next_offset)
    ORDER BY (topic, partition)`,
    // An archive written before marks existed: every partition marked as far as it is archived, so
    // that the partitions a first flush after the upgrade does not touch are not hidden.
    `INSERT INTO {db}.archive_marks SELECT topic, partition, max(offset) + 1, now64(3) FROM {db}.interactions GROUP BY topic, partition`,
  ],
};
