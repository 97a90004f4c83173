import type { ClickHouse } from '../infra/clickhouse';
import { IngestArchive } from '../infra/clickhouse';
import type { LoadedDataset, UserSequence } from './types';

/**
 * The ClickHouse archive as a dataset: the latest catalog from `items`, and every user's
 * interactions from `interactions` (deduplicated with FINAL) ordered by event time, ties by
 * event id. Batch jobs (rebuild, train) read this instead of a dataset directory.
 */
export async function loadArchiveDataset(ch: ClickHouse, options: { readonly types?: readonly string[] } = {}): Promise<LoadedDataset> {
  const items = await new IngestArchive(ch).readItems();
  const rows = await ch.query<{ user_id: string; items: string[]; ts: string[]; values: number[] }>(
    `SELECT user_id, groupArray(item_id) AS items, groupArray(toUnixTimestamp64Milli(ts)) AS ts, groupArray(ifNull(value, 1)) AS values
     FROM (SELECT user_id, item_id, ts, value, event_id FROM ${ch.table('interactions')} FINAL
           ${options.types ? 'WHERE type IN {types:Array(String)}' : ''} ORDER BY user_id, ts, event_id)
     GROUP BY user_id ORDER BY user_id`,
    options.types ? { types: options.types } : undefined,
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
  };
}
