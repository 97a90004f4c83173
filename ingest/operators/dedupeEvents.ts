import { map, type OperatorFunction } from 'rxjs';
import type { DeadLetter } from '../../schemas/events';
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
 * The remembered ids: a map from id to its arrival number for lookups, plus a FIFO of arrival
 * data in parallel arrays (id, ts, where it was seen) for eviction and messages. Each event
 * costs O(1) and keeps no object alive beyond the map entry: the window holds up to `maxIds`
 * ids for a long time, so per-id objects would all be promoted and traced by the old-space GC.
 */
class IdWindow {
  /** id -> arrival number (`dropped` + index in the arrays). */
  private readonly seen = new Map<string, number>();
  private ids: string[] = [];
  private times: number[] = [];
  /** Where each id was first seen: topic (undefined: before the restart), partition, offset. */
  private topics: Array<string | undefined> = [];
  private partitions: number[] = [];
  private offsets: number[] = [];
  private head = 0;
  /** Arrival numbers compacted away from the front of the arrays. */
  private dropped = 0;
  newestTs = Number.MIN_SAFE_INTEGER;

  constructor(
    private readonly maxIds: number,
    private readonly windowMs: number,
  ) {}

  /** The arrival number of `id`, or undefined when it is not remembered. */
  find(id: string): number | undefined {
    return this.seen.get(id);
  }

  /** Where the id of arrival number `arrival` was first seen, for the dead letter's message. */
  where(arrival: number): string {
    const i = arrival - this.dropped;
    const topic = this.topics[i];
    return topic === undefined ? 'before the restart' : `${topic}/${this.partitions[i]}@${this.offsets[i]}`;
  }

  add(id: string, ts: number, topic: string | undefined, partition: number, offset: number): void {
    this.seen.set(id, this.dropped + this.ids.length);
    this.ids.push(id);
    this.times.push(ts);
    this.topics.push(topic);
    this.partitions.push(partition);
    this.offsets.push(offset);
    if (ts > this.newestTs) this.newestTs = ts;
    this.evict();
  }

  /** Drops the oldest ids while they are beyond the count bound or the time window. */
  private evict(): void {
    const horizon = this.newestTs - this.windowMs;
    while (this.head < this.ids.length && (this.seen.size > this.maxIds || (this.times[this.head] as number) < horizon)) {
      this.seen.delete(this.ids[this.head] as string);
      this.head++;
    }
    if (this.head > 65_536 && this.head * 2 > this.ids.length) {
      const h = this.head;
      this.ids = this.ids.slice(h);
      this.times = this.times.slice(h);
      this.topics = this.topics.slice(h);
      this.partitions = this.partitions.slice(h);
      this.offsets = this.offsets.slice(h);
      this.dropped += h;
      this.head = 0;
    }
  }
}

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
    for (const { eventId, ts } of options.initial ?? []) window.add(eventId, ts, undefined, 0, 0);
    return source.pipe(
      map((batch) => {
        let kept: Array<Sourced<T>> | undefined;
        const duplicates: DeadLetter[] = [];
        const events = batch.events;
        for (let i = 0; i < events.length; i++) {
          const e = events[i] as Sourced<T>;
          const id = e.event.eventId;
          const seen = window.find(id);
          if (seen !== undefined) {
            kept ??= events.slice(0, i);
            const message = `eventId: ${JSON.stringify(id)} already seen (${window.where(seen)})`;
            duplicates.push(deadLetter(e.origin, e.raw, 'duplicate', message, 'eventId', now()));
            continue;
          }
          window.add(id, e.event.ts, e.origin.topic, e.origin.partition, e.offset);
          kept?.push(e);
        }
        return kept === undefined ? batch : withEvents(batch, kept, duplicates);
      }),
    );
  };
}
