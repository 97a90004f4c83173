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

interface Seen {
  readonly ts: number;
  readonly where: string;
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
    // Map keeps insertion order: the first key is the oldest remembered id.
    const seen = new Map<string, Seen>();
    let newestTs = Number.MIN_SAFE_INTEGER;
    for (const { eventId, ts } of options.initial ?? []) {
      seen.set(eventId, { ts, where: 'before restart' });
      newestTs = Math.max(newestTs, ts);
    }
    // Drops the oldest entries while they are beyond the count bound or the time window. Only
    // the front is examined, so this is O(1) amortised per event.
    const evict = (): void => {
      for (const [id, entry] of seen) {
        if (seen.size > options.maxIds || entry.ts < newestTs - options.windowMs) seen.delete(id);
        else break;
      }
    };
    return source.pipe(
      map((batch) => {
        const kept: Array<Sourced<T>> = [];
        const duplicates: DeadLetter[] = [];
        for (const e of batch.events) {
          const first = seen.get(e.event.eventId);
          if (first) {
            duplicates.push(
              deadLetter(e.origin, e.raw, 'duplicate', `eventId: ${JSON.stringify(e.event.eventId)} already seen (${first.where})`, 'eventId', now()),
            );
            continue;
          }
          seen.set(e.event.eventId, { ts: e.event.ts, where: `${e.origin.topic}/${e.origin.partition}@${e.origin.offset}` });
          if (e.event.ts > newestTs) newestTs = e.event.ts;
          evict();
          kept.push(e);
        }
        return duplicates.length === 0 ? batch : withEvents(batch, kept, duplicates);
      }),
    );
  };
}
