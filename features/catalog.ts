import { createHash } from 'node:crypto';
import { ValidationError, describeValue } from '../errors';
import { ITEM_TEXT_FIELDS, type ItemEvent, type ItemTextField } from '../schemas/events';
import { cleanText } from './cleanText';
import { ItemRegistry } from './registry';

/**
 * The catalog: the latest metadata of every item, keyed by the dense ids of an
 * {@link ItemRegistry}. Fed with catalog events (the Kafka catalog topic, the ClickHouse `items`
 * archive, or a dataset directory via `loadDataset(dir).items` from ingest/).
 *
 * "Latest" is by event time: an event replaces the stored one when its `ts` is newer or equal
 * (equal `ts`: the event applied later wins, so replaying an archive in order is idempotent).
 * Every item the registry knows has a row, also items that only appeared in interactions; their
 * texts are empty.
 */
export class Catalog {
  private readonly latest = new Map<number, ItemEvent>();

  constructor(readonly registry: ItemRegistry = ItemRegistry.inMemory()) {}

  /** Applies one catalog event; true when it became the item's latest metadata. */
  apply(event: ItemEvent): boolean {
    if (!Number.isFinite(event.ts)) {
      throw new ValidationError(`catalog event ts must be epoch milliseconds, got ${describeValue(event.ts)}`, {
        context: { itemId: event.itemId },
      });
    }
    const [id] = this.registry.assign([event.itemId]) as [number];
    const previous = this.latest.get(id);
    if (previous !== undefined && event.ts < previous.ts) return false;
    this.latest.set(id, event);
    return true;
  }

  /** Applies a stream of events in order; returns how many were applied and how many were stale. */
  async applyAll(events: Iterable<ItemEvent> | AsyncIterable<ItemEvent>): Promise<{ applied: number; stale: number }> {
    let applied = 0;
    let stale = 0;
    for await (const event of events) {
      if (this.apply(event)) applied++;
      else stale++;
    }
    return { applied, stale };
  }

  /** Number of rows N (= registry size); dense ids 1..N. */
  get size(): number {
    return this.registry.size;
  }

  /** Number of items that have metadata. */
  get itemsWithMetadata(): number {
    return this.latest.size;
  }

  /** The latest metadata of an item by external id, or undefined. */
  metadata(externalId: string): ItemEvent | undefined {
    const id = this.registry.idOf(externalId);
    return id === undefined ? undefined : this.latest.get(id);
  }

  /**
   * The text fields that have text for at least one item, in {@link ITEM_TEXT_FIELDS} order.
   * For a source with one merged text (Amazon Scientific) this is `['meta']`.
   */
  textFields(): ItemTextField[] {
    return ITEM_TEXT_FIELDS.filter((field) => {
      for (const event of this.latest.values()) if (itemFieldText(event, field).length > 0) return true;
      return false;
    });
  }

  /**
   * Cleaned texts of one field for every item, ordered by dense id: element i belongs to item
   * i + 1; `''` where the item has no such text. [N]
   */
  fieldTexts(field: ItemTextField): string[] {
    const out = new Array<string>(this.registry.size).fill('');
    for (const [id, event] of this.latest) out[id - 1] = itemFieldText(event, field);
    return out;
  }

  /**
   * Content hash (sha256 hex) of the snapshot: every row's external id and raw text fields in
   * dense-id order (timestamps excluded, so replaying the same content hashes the same).
   */
  snapshotHash(): string {
    const hash = createHash('sha256').update('streamrec.catalog.v1\n');
    const ids = this.registry.externalIds();
    for (let i = 0; i < ids.length; i++) {
      const event = this.latest.get(i + 1);
      const fields = ITEM_TEXT_FIELDS.map((f) => (event ? (event[f] ?? null) : null));
      hash.update(`${JSON.stringify([ids[i], ...fields])}\n`);
    }
    return hash.digest('hex');
  }
}

/** The cleaned text of one field of one catalog event (`''` when absent). */
export function itemFieldText(event: ItemEvent, field: ItemTextField): string {
  return cleanText(event[field]);
}
