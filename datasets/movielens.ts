import path from 'node:path';
import { DatasetError } from '../errors';
import type { ItemEvent } from '../schemas/events';
import { columnIndex, readAtomicFile } from './atomicFile';
import type { LoadedDataset, UserSequence } from './types';

/**
 * MovieLens 100K in RecBole atomic format (`ml-100k.inter`, `ml-100k.item`). Real unix
 * timestamps (seconds, turned into ms). Events of one user with equal timestamps keep their
 * file order.
 */
export async function readMovieLens(dir: string, name = 'ml-100k'): Promise<LoadedDataset> {
  const interFile = path.join(dir, `${name}.inter`);
  const itemFile = path.join(dir, `${name}.item`);
  const inter = await readAtomicFile(interFile, ['user_id', 'item_id', 'timestamp']);
  const u = columnIndex(inter, 'user_id', interFile);
  const it = columnIndex(inter, 'item_id', interFile);
  const ts = columnIndex(inter, 'timestamp', interFile);
  const ratingCol = inter.columns.indexOf('rating');

  const byUser = new Map<string, Array<{ item: string; ts: number; value: number; order: number }>>();
  let minTs = Number.POSITIVE_INFINITY;
  for (const row of inter.rows) {
    const seconds = Number(row.fields[ts]);
    const value = ratingCol >= 0 ? Number(row.fields[ratingCol]) : 1;
    if (!Number.isFinite(seconds) || seconds < 0) {
      throw new DatasetError(`${interFile}:${row.line}: timestamp must be a non-negative number, got ${JSON.stringify(row.fields[ts])}`);
    }
    if (!Number.isFinite(value)) {
      throw new DatasetError(`${interFile}:${row.line}: rating must be a number, got ${JSON.stringify(row.fields[ratingCol])}`);
    }
    const userId = row.fields[u] as string;
    const list = byUser.get(userId) ?? [];
    list.push({ item: row.fields[it] as string, ts: Math.round(seconds * 1000), value, order: row.line });
    byUser.set(userId, list);
    minTs = Math.min(minTs, seconds * 1000);
  }

  const sequences: UserSequence[] = [];
  for (const [userId, events] of byUser) {
    events.sort((a, b) => a.ts - b.ts || a.order - b.order);
    sequences.push({
      userId,
      itemIds: events.map((e) => e.item),
      timestamps: events.map((e) => e.ts),
      values: events.map((e) => e.value),
    });
  }
  sequences.sort((a, b) => compareIds(a.userId, b.userId));

  const items: ItemEvent[] = [];
  const itemsAt = Number.isFinite(minTs) ? Math.round(minTs) : 0;
  const item = await readAtomicFile(itemFile, ['item_id']);
  const idCol = columnIndex(item, 'item_id', itemFile);
  const titleCol = item.columns.indexOf('movie_title');
  const yearCol = item.columns.indexOf('release_year');
  const classCol = item.columns.indexOf('class');
  for (const row of item.rows) {
    const title = titleCol >= 0 ? row.fields[titleCol]?.trim() : undefined;
    const year = yearCol >= 0 ? row.fields[yearCol]?.trim() : undefined;
    const genres = classCol >= 0 ? (row.fields[classCol] ?? '').split(' ').filter((g) => g.length > 0) : [];
    items.push({
      itemId: row.fields[idCol] as string,
      ts: itemsAt,
      ...(title ? { title } : {}),
      ...(genres.length > 0 ? { categories: genres } : {}),
      ...(year ? { features: [`released ${year}`] } : {}),
    });
  }

  return {
    name,
    dir,
    items,
    sequences,
    eventType: 'rating',
    timestampRule: 'real: the dataset timestamps (unix seconds) as epoch milliseconds; ties keep file order',
  };
}

/** Numeric-aware id order ("2" < "10"), so users come out in a natural order. */
export function compareIds(a: string, b: string): number {
  const na = Number(a);
  const nb = Number(b);
  if (Number.isFinite(na) && Number.isFinite(nb)) return na - nb;
  return a < b ? -1 : a > b ? 1 : 0;
}
