import { map, type OperatorFunction } from 'rxjs';
import type { DeadLetter, MessageOrigin } from '../../schemas/events';
import { deadLetter, withEvents, type IngestBatch, type Sourced } from '../types';

export interface DedupeOptions {
  /** Most ids remembered; the oldest are forgotten first. */
  readonly maxIds: number;
  /** An id is forgotten once an event this much newer (event time) has been seen. */
  readonly windowMs: number;
  /** Ids known before the stream starts (e.g. from restored histories). */
  readonly initial?: Iterable<{ readonly eventId: string; readonly ts: number }>;
  readonly now?: () => number;
}

/**
 * The remembered ids: a map for lookups plus a FIFO of (id, ts) in arrival order for eviction,
 * so that each event costs O(1) and allocates nothing beyond the map entry.
 */
class IdWindow {
  readonly firstSeen = new Map<string, MessageOrigin | undefined>();
  private ids: string[] = [];
  private times: number[] = [];
  private head = 0;
  newestTs = Number.MIN_SAFE_INTEGER;

  constructor(
    private readonly maxIds: number,
    private readonly windowMs: number,
  ) {}

  add(id: string, ts: number, origin: MessageOrigin | undefined): void {
    this.firstSeen.set(id, origin);
    this.ids.push(id);
    this.times.push(ts);
    if (ts > this.newestTs) this.newestTs = ts;
    this.evict();
  }

  /** Drops the oldest ids while they are beyond the count bound or the time window. */
  private evict(): void {
    const horizon = this.newestTs - this.windowMs;
    while (this.head < this.ids.length && (this.firstSeen.size > this.maxIds || (this.times[this.head] as number) < horizon)) {
      const id = this.ids[this.head] as string;
      this.firstSeen.delete(id);
      this.head++;
    }
    if (this.head > 65_536 && this.head * 2 > this.ids.length) {
      this.ids = this.ids.slice(this.head);
      this.times = this.times.slice(this.head);
      this.head = 0;
    }
  }
}

const where = (origin: MessageOrigin | undefined): string =>
  origin ? `${origin.topic}/${origin.partition}@${origin.offset}` : 'before the restart';

/**
 * De-duplicates events by `eventId` within a bounded window (count and event time). The first
 * copy passes; later copies become `duplicate` dead letters naming where the first one was seen.
 * State lives per subscription.
 *
 * @example
 * events$.pipe(dedupeEvents({ maxIds: 1_000_000, windowMs: 86_400_000 }))
 */
export function dedupeEvents<T extends { eventId: string; ts: number }>(
  options: DedupeOptions,
): OperatorFunction<IngestBatch<T>, IngestBatch<T>> {
  const now = options.now ?? Date.now;
  return (source) => {
    const window = new IdWindow(options.maxIds, options.windowMs);
    for (const { eventId, ts } of options.initial ?? []) window.add(eventId, ts, undefined);
    return source.pipe(
      map((batch) => {
        let kept: Array<Sourced<T>> | undefined;
        const duplicates: DeadLetter[] = [];
        batch.events.forEach((e, i) => {
          const id = e.event.eventId;
          if (window.firstSeen.has(id)) {
            kept ??= batch.events.slice(0, i);
            const message = `eventId: ${JSON.stringify(id)} already seen (${where(window.firstSeen.get(id))})`;
            duplicates.push(deadLetter(e.origin, e.raw, 'duplicate', message, 'eventId', now()));
            return;
          }
          window.add(id, e.event.ts, e.origin);
          kept?.push(e);
        });
        return kept === undefined ? batch : withEvents(batch, kept, duplicates);
      }),
    );
  };
}
