import type { Migration } from '../migrations';

/**
 * `micro_epochs.watermark`: where the stream stood once the micro-epoch had read its window. Live
 * rows (method `live`, `rebuild`): per `topic/partition` of the archive, the first offset not
 * read, the position a trainer restarted from that checkpoint goes on from. Rows of the
 * incremental experiment: `stream` -> how many of the dataset's interactions, in time order,
 * precede the window's end (the first model's included). Rows written before this column: empty.
 */
export const migration008: Migration = {
  version: 8,
  name: 'micro_epochs.watermark: the stream position after each micro-epoch',
  statements: [`ALTER TABLE {db}.micro_epochs ADD COLUMN IF NOT EXISTS watermark Map(String, UInt64) AFTER window_end`],
};
