import { map, type OperatorFunction } from 'rxjs';
import { describeTime } from '../../errors';
import type { DeadLetter, InteractionEvent } from '../../schemas/events';
import { emptyHistory, partitionKey, type UserHistory } from '../../schemas/history';
import { deadLetter, withEvents, type IngestBatch, type Sourced } from '../types';

/** Where rolling histories are read and written (a HistoryStore, or a Map in tests). */
export interface HistoryState {
  get(userId: string): UserHistory | undefined;
  put(history: UserHistory): void;
}

export interface RollingHistoryOptions {
  readonly state: HistoryState;
  /** Items kept per user (the most recent N). */
  readonly maxLength: number;
  /** Events older than the user's newest by more than this are dead-lettered as `late`. */
  readonly toleranceMs: number;
  readonly now?: () => number;
}

/** Index at which an entry with time `ts` goes: after every entry with time <= ts. */
function insertionIndex(timestamps: readonly number[], ts: number): number {
  let lo = 0;
  let hi = timestamps.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((timestamps[mid] as number) <= ts) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Applies interactions to per-user rolling histories: the last `maxLength` items with their
 * timestamps and event ids, ordered by event time. An event that is out of order by at most
 * `toleranceMs` is placed by its timestamp; an older one becomes a `late` dead letter. Each
 * user's highest applied offset per source partition is recorded so that redeliveries can be
 * recognised after a restart.
 *
 * @example
 * events$.pipe(rollingHistory({ state: store, maxLength: 50, toleranceMs: 600_000 }))
 */
export function rollingHistory(options: RollingHistoryOptions): OperatorFunction<IngestBatch<InteractionEvent>, IngestBatch<InteractionEvent>> {
  const { state, maxLength, toleranceMs } = options;
  const now = options.now ?? Date.now;
  return map((batch) => {
    const accepted: Array<Sourced<InteractionEvent>> = [];
    const late: DeadLetter[] = [];
    const clock = now();
    const key = partitionKey(batch.topic, batch.partition);
    // Work on one mutable copy per user touched in this batch, then put each once.
    const touched = new Map<string, UserHistory>();
    for (const e of batch.events) {
      const { userId, itemId, ts, eventId } = e.event;
      // Updated in place: the store serialises what it persists when a flush starts, and
      // nothing in the loop can throw, so a batch is applied whole or not at all.
      let h = touched.get(userId);
      if (!h) {
        h = state.get(userId) ?? emptyHistory(userId, batch.partition);
        touched.set(userId, h);
      }
      if (ts < h.newestTs - toleranceMs) {
        // Recorded as processed too: its dead letter is durable before the changelog is.
        h.offsets[key] = Math.max(h.offsets[key] ?? -1, e.offset);
        late.push(
          deadLetter(
            e.origin,
            e.raw,
            'late',
            `ts: ${describeTime(ts)} is ${h.newestTs - ts} ms older than the user's newest event (tolerance ${toleranceMs} ms)`,
            'ts',
            clock,
          ),
        );
        continue;
      }
      const at = insertionIndex(h.timestamps, ts);
      if (at === h.timestamps.length) {
        h.itemIds.push(itemId);
        h.timestamps.push(ts);
        h.eventIds.push(eventId);
      } else {
        h.itemIds.splice(at, 0, itemId);
        h.timestamps.splice(at, 0, ts);
        h.eventIds.splice(at, 0, eventId);
      }
      const excess = h.itemIds.length - maxLength;
      if (excess === 1) {
        h.itemIds.shift();
        h.timestamps.shift();
        h.eventIds.shift();
      } else if (excess > 0) {
        h.itemIds.splice(0, excess);
        h.timestamps.splice(0, excess);
        h.eventIds.splice(0, excess);
      }
      if (ts > h.newestTs) h.newestTs = ts;
      h.offsets[key] = Math.max(h.offsets[key] ?? -1, e.offset);
      h.partition = batch.partition;
      h.updatedAt = clock;
      accepted.push(e);
    }
    for (const h of touched.values()) state.put(h);
    return late.length === 0 ? batch : withEvents(batch, accepted, late);
  });
}
