import { map, type OperatorFunction } from 'rxjs';
import { withEvents, type IngestBatch, type Sourced } from '../types';

/**
 * Drops events whose effects are already durable: after a crash, Kafka redelivers messages
 * between the last committed offset and what was written to the history changelog. `isApplied`
 * answers from the restored state (a user's highest applied offset per source partition).
 * Dropped events are counted in `skipped`, not dead-lettered: they are not bad, only repeated.
 *
 * @example
 * events$.pipe(skipApplied((e) => store.appliedOffset(e.event.userId, e.origin) >= e.offset))
 */
export function skipApplied<T>(isApplied: (event: Sourced<T>) => boolean): OperatorFunction<IngestBatch<T>, IngestBatch<T>> {
  return map((batch) => {
    const kept = batch.events.filter((e) => !isApplied(e));
    return kept.length === batch.events.length ? batch : withEvents(batch, kept, [], batch.events.length - kept.length);
  });
}
