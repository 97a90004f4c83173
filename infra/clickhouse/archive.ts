import type { DeadLetter, ItemEvent } from '../../schemas/events';
import type { ClickHouse, RowShape } from './client';

/** A row of the `interactions` table (times in epoch ms). */
export interface InteractionRow {
  readonly event_id: string;
  readonly user_id: string;
  readonly item_id: string;
  readonly type: string;
  readonly value: number | null;
  readonly ts: number;
  readonly session_index: number;
  readonly source: string;
  readonly context: string;
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  readonly ingested_at: number;
}

/** The `interactions` columns in insert order, and a row's values in that order. */
export const INTERACTION_SHAPE: RowShape<InteractionRow> = {
  columns: ['event_id', 'user_id', 'item_id', 'type', 'value', 'ts', 'session_index', 'source', 'context', 'topic', 'partition', 'offset', 'ingested_at'],
  values: (r) => [r.event_id, r.user_id, r.item_id, r.type, r.value, r.ts, r.session_index, r.source, r.context, r.topic, r.partition, r.offset, r.ingested_at],
};

/** A row of the `items` table. */
export interface ItemRow {
  readonly item_id: string;
  readonly ts: number;
  readonly title: string;
  readonly brand: string;
  readonly categories: string[];
  readonly description: string;
  readonly features: string[];
  readonly meta: string;
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  readonly ingested_at: number;
}

/** Payload bytes kept in ClickHouse per dead letter (the dead-letter topic keeps all of them). */
export const DEAD_LETTER_PAYLOAD_LIMIT = 64 * 1024;

export function deadLetterRow(d: DeadLetter): Record<string, unknown> {
  const payload =
    d.payloadBytes > DEAD_LETTER_PAYLOAD_LIMIT
      ? Buffer.from(d.payload, 'base64').subarray(0, DEAD_LETTER_PAYLOAD_LIMIT).toString('base64')
      : d.payload;
  return {
    topic: d.origin.topic,
    partition: d.origin.partition,
    offset: Number(d.origin.offset),
    message_key: d.origin.key,
    code: d.error.code,
    message: d.error.message,
    path: d.error.path,
    payload_base64: payload,
    payload_bytes: d.payloadBytes,
    failed_at: d.failedAt,
  };
}

/**
 * Settings of archive inserts. The archive tables are ReplacingMergeTree: rows redelivered after a
 * crash collapse in background merges and under FINAL, which is how every reader queries them,
 * so the insert-time collapse (`optimize_on_insert`, a sort-and-replace pass over each inserted
 * block) is skipped: it costs embedded chDB about a fifth of its insert CPU and finds nothing in
 * a block of distinct events.
 */
const ARCHIVE_INSERT_SETTINGS = { optimize_on_insert: 0 } as const;

/** The archive tables written by the ingest stage. */
export class IngestArchive {
  constructor(readonly ch: ClickHouse) {}

  insertInteractions(rows: readonly InteractionRow[]): Promise<void> {
    return this.ch.insert('interactions', rows, { shape: INTERACTION_SHAPE, settings: ARCHIVE_INSERT_SETTINGS });
  }

  insertItems(rows: readonly ItemRow[]): Promise<void> {
    return this.ch.insert('items', rows, { settings: ARCHIVE_INSERT_SETTINGS });
  }

  /**
   * Records that every message of each partition below `nextOffset` is archived (or
   * dead-lettered): called by a flush once all its archive inserts are done (`archive_marks`).
   */
  markArchived(marks: ReadonlyArray<{ readonly topic: string; readonly partition: number; readonly nextOffset: number }>): Promise<void> {
    const at = Date.now();
    return this.ch.insert(
      'archive_marks',
      marks.map((m) => ({ topic: m.topic, partition: m.partition, next_offset: m.nextOffset, marked_at: at })),
    );
  }

  insertDeadLetters(letters: readonly DeadLetter[]): Promise<void> {
    return this.ch.insert('dead_letters', letters.map(deadLetterRow));
  }

  /** The latest metadata of every archived item, as catalog events (for rebuilds). */
  async readItems(): Promise<ItemEvent[]> {
    const rows = await this.ch.query<{
      item_id: string;
      ts: string;
      title: string;
      brand: string;
      categories: string[];
      description: string;
      features: string[];
      meta: string;
    }>(
      `SELECT item_id, toUnixTimestamp64Milli(ts) AS ts, title, brand, categories, description, features, meta FROM ${this.ch.table('items')} FINAL ORDER BY item_id`,
    );
    return rows.map((r) => ({
      itemId: r.item_id,
      ts: Number(r.ts),
      ...(r.title ? { title: r.title } : {}),
      ...(r.brand ? { brand: r.brand } : {}),
      ...(r.categories.length > 0 ? { categories: r.categories } : {}),
      ...(r.description ? { description: r.description } : {}),
      ...(r.features.length > 0 ? { features: r.features } : {}),
      ...(r.meta ? { meta: r.meta } : {}),
    }));
  }
}
