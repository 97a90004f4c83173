import { map, type OperatorFunction } from 'rxjs';
import { withEvents, type IngestBatch, type Sourced } from '../types';

export interface SkipAppliedOptions<T> {
  /** Whether the event's effects are already durable (e.g. its user's applied offset is at or above it). */
  readonly isApplied: (event: Sourced<T>) => boolean;
  /**
   * At least the highest offset of the partition applied anywhere (-1 when none). A batch whose
   * first event is above it cannot hold a redelivery and passes without a per-event check, which
   * is every batch outside the replay after a restart or rebalance.
   */
  readonly highestApplied?: (topic: string, partition: number) => number;
}

/**
 * Drops events whose effects are already durable: after a crash, Kafka redelivers messages
 * between the last committed offset and what was written to the history changelog. `isApplied`
 * answers from the restored state (a user's highest applied offset per source partition).
 * Dropped events are counted in `skipped`, not dead-lettered: they are not bad, only repeated.
 *
 * @example
 * events$.pipe(skipApplied({
 *   isApplied: (e) => store.appliedOffset(e.event.userId, e.origin.topic, e.origin.partition) >= e.offset,
 *   highestApplied: (topic, partition) => store.highestApplied(topic, partition),
 * }))
 */
export function skipApplied<T>(options: SkipAppliedOptions<T>): OperatorFunction<IngestBatch<T>, IngestBatch<T>> {
  const { isApplied, highestApplied } = options;
  return map((batch) => {
    const first = batch.events[0];
    if (first === undefined) return batch;
    // Events of a batch come in offset order: the first one is the lowest.
    if (highestApplied && first.offset > highestApplied(batch.topic, batch.partition)) return batch;
    const kept = batch.events.filter((e) => !isApplied(e));
    return kept.length === batch.events.length ? batch : withEvents(batch, kept, [], batch.events.length - kept.length);
  });
}
