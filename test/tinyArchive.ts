import path from 'node:path';
import type { LoadedDataset } from '../datasets';
import type { InteractionRow, ItemRow } from '../infra/clickhouse';
import { tinyStoresConfig } from './tinyScientific';

/**
 * A small dataset as the ClickHouse archive holds it after ingest, for tests of the live loop:
 * catalog rows, and every interaction as an archive row in time order, users spread over
 * `partitions` partitions with offsets counting up per partition (as a keyed producer and a broker
 * would give them).
 */
export function tinyArchiveRows(dataset: LoadedDataset, partitions: number): { items: ItemRow[]; interactions: InteractionRow[]; nextOffsets: Record<string, number> } {
  const now = Date.now();
  const items: ItemRow[] = dataset.items.map((item, i) => ({
    item_id: item.itemId, ts: item.ts, title: item.title ?? '', brand: item.brand ?? '', categories: item.categories ?? [], description: item.description ?? '',
    features: item.features ?? [], meta: item.meta ?? '', topic: 'catalog', partition: 0, offset: i, ingested_at: now,
  }));
  const events = dataset.sequences.flatMap((s, u) => s.itemIds.map((item, t) => ({ user: s.userId, u, t, item, ts: s.timestamps[t] as number })));
  events.sort((a, b) => a.ts - b.ts || a.u - b.u || a.t - b.t);
  const next = new Array<number>(partitions).fill(0);
  const interactions: InteractionRow[] = events.map((e) => {
    const partition = e.u % partitions;
    const offset = next[partition]!++;
    return { event_id: `${e.user}:${e.t}`, user_id: e.user, item_id: e.item, type: 'view', value: null, ts: e.ts, session_index: 0, source: 'test', context: '', topic: 'interactions', partition, offset, ingested_at: now };
  });
  return { items, interactions, nextOffsets: Object.fromEntries(next.map((n, p) => [`interactions/${p}`, n])) };
}

/** Stores under `root` and small model settings (a few seconds to rebuild and train on a tiny dataset). */
export function tinyLiveConfig(root: string): Record<string, unknown> {
  return {
    ...tinyStoresConfig(root, 2),
    clickhouse: { url: `chdb:${path.join(root, 'ch')}` },
    modelRegistry: { url: `dir:${path.join(root, 'registry')}` },
  };
}
