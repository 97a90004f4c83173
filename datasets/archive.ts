import type { ClickHouse } from '../infra/clickhouse';
import { IngestArchive } from '../infra/clickhouse';
import type { LoadedDataset, UserSequence } from './types';

/**
 * The ClickHouse archive as a dataset: the latest catalog from `items`, and every user's
 * interactions from `interactions` (deduplicated with FINAL) ordered by event time, ties by
 * event id. Batch jobs (rebuild, train) read this instead of a dataset directory.
 */
export async function loadArchiveDataset(
  ch: ClickHouse,
  options: {
    readonly types?: readonly string[];
    /** Read only the interactions below this stream position (topic/partition -> first offset left out; absent partitions: none), not all that is archived. */
    readonly below?: Readonly<Record<string, number>>;
  } = {},
): Promise<LoadedDataset> {
  // The stream position first, then only what lies below it: rows archived meanwhile are left
  // for the next reader (the live loop continues from these offsets).
  const offsets = options.below ? { ...options.below } : await archiveOffsets(ch);
  const items = await new IngestArchive(ch).readItems();
  const rows = await ch.query<{ user_id: string; items: string[]; ts: string[]; values: number[] }>(
    `SELECT user_id, groupArray(item_id) AS items, groupArray(toUnixTimestamp64Milli(ts)) AS ts, groupArray(ifNull(value, 1)) AS values
     FROM (SELECT user_id, item_id, ts, value, event_id FROM ${ch.table('interactions')} FINAL
           WHERE ${BELOW_OFFSETS} ${options.types ? 'AND type IN {types:Array(String)}' : ''} ORDER BY user_id, ts, event_id)
     GROUP BY user_id ORDER BY user_id`,
    { offsets, ...(options.types ? { types: options.types } : {}) },
  );
  const sequences: UserSequence[] = rows.map((r) => ({
    userId: r.user_id,
    itemIds: r.items,
    timestamps: r.ts.map(Number),
    values: r.values.map(Number),
  }));
  // Items seen only in interactions still need catalog rows (with no text).
  const known = new Set(items.map((i) => i.itemId));
  for (const s of sequences) {
    for (const id of s.itemIds) {
      if (!known.has(id)) {
        known.add(id);
        items.push({ itemId: id, ts: 0 });
      }
    }
  }
  return {
    name: `clickhouse:${ch.database}`,
    dir: ch.url,
    items,
    sequences,
    eventType: 'view',
    timestampRule: 'real: event times as archived',
    streamOffsets: offsets,
  };
}

/** Rows below the `{offsets:Map(String, UInt64)}` parameter (topic/partition -> first offset not included; absent: none). */
export const BELOW_OFFSETS = "offset < {offsets:Map(String, UInt64)}[concat(topic, '/', toString(partition))]";

/**
 * How far ingest has archived each partition without gaps (`archive_marks`, written after each
 * flush): `topics` have marks, and within them only rows below `marks[topic/partition]` are known
 * to have no missing rows before them (a partition without a mark: none). Topics without any
 * mark (an archive written before marks existed, or rows inserted by other means) are not capped.
 */
export interface ArchiveMarks {
  readonly topics: string[];
  readonly marks: Record<string, number>;
}

export async function archiveMarks(ch: ClickHouse): Promise<ArchiveMarks> {
  const rows = await ch.query<{ topic: string; key: string; next: string }>(
    `SELECT topic, concat(topic, '/', toString(partition)) AS key, max(next_offset) AS next FROM ${ch.table('archive_marks')} GROUP BY topic, partition`,
  );
  return { topics: [...new Set(rows.map((r) => r.topic))], marks: Object.fromEntries(rows.map((r) => [r.key, Number(r.next)])) };
}

/** Rows within the `{markedTopics:Array(String)}` / `{marks:Map(String, UInt64)}` parameters (an ArchiveMarks' fields). */
export const WITHIN_MARKS =
  "(NOT has({markedTopics:Array(String)}, topic) OR offset < {marks:Map(String, UInt64)}[concat(topic, '/', toString(partition))])";

/** The query parameters of WITHIN_MARKS. */
export function marksParams(marks: ArchiveMarks): { markedTopics: string[]; marks: Record<string, number> } {
  return { markedTopics: marks.topics, marks: marks.marks };
}

/**
 * Per `topic/partition` of the archived interactions, the offset after the last one archived
 * without a gap before it (within the archive marks: a flush in progress, or one a crash cut short,
 * can have later rows visible before earlier ones).
 */
export async function archiveOffsets(ch: ClickHouse): Promise<Record<string, number>> {
  const marks = await archiveMarks(ch);
  const rows = await ch.query<{ key: string; next: string }>(
    `SELECT concat(topic, '/', toString(partition)) AS key, max(offset) + 1 AS next FROM ${ch.table('interactions')} WHERE ${WITHIN_MARKS} GROUP BY key`,
    marksParams(marks),
  );
  return Object.fromEntries(rows.map((r) => [r.key, Number(r.next)]));
}
