import { map, type OperatorFunction } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import type { InteractionEvent } from '../../../schemas/events';
import type { IngestBatch, RawBatch, Sourced } from '../../types';

/** A TestScheduler whose deep equality is jest's. */
export function testScheduler(): TestScheduler {
  return new TestScheduler((actual, expected) => expect(actual).toEqual(expected));
}

export function rawBatch(messages: Array<string | Buffer | null>, firstOffset = 0, partition = 0, topic = 'interactions'): RawBatch {
  return {
    topic,
    partition,
    messages: messages.map((m, i) => ({
      offset: String(firstOffset + i),
      key: null,
      value: m === null ? null : Buffer.isBuffer(m) ? m : Buffer.from(m),
    })),
  };
}

export function interaction(eventId: string, userId: string, itemId: string, ts: number): InteractionEvent {
  return { eventId, userId, itemId, type: 'view', ts };
}

/** A decoded batch of interactions at consecutive offsets. */
export function eventBatch(events: InteractionEvent[], firstOffset = 0, partition = 0, topic = 'interactions'): IngestBatch<InteractionEvent> {
  const sourced: Array<Sourced<InteractionEvent>> = events.map((event, i) => ({
    event,
    origin: { topic, partition, offset: String(firstOffset + i), key: event.userId },
    offset: firstOffset + i,
    raw: Buffer.from(JSON.stringify(event)),
  }));
  return {
    topic,
    partition,
    events: sourced,
    deadLetters: [],
    skipped: 0,
    size: events.length,
    lastOffset: events.length > 0 ? String(firstOffset + events.length - 1) : undefined,
  };
}

/** Event ids of a batch, and dead-letter codes by offset: compact things to assert on. */
export function summary<T extends { eventId: string }>(batch: IngestBatch<T>): { ids: string[]; dead: string[]; skipped: number } {
  return {
    ids: batch.events.map((e) => e.event.eventId),
    dead: batch.deadLetters.map((d) => `${d.origin.offset}:${d.error.code}`),
    skipped: batch.skipped,
  };
}

/**
 * The behaviour every batch operator shares, checked with marbles: an error mid-stream passes
 * through after the batch before it, an empty stream completes, `never` stays silent, and
 * unsubscribing unsubscribes from the source.
 */
export function expectStreamSemantics<T>(op: OperatorFunction<IngestBatch<T>, IngestBatch<T>>, empty: IngestBatch<T>): void {
  testScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
    expectObservable(cold('a#', { a: empty }).pipe(op, map((b) => b.size))).toBe('a#', { a: 0 });
    expectObservable(cold<never>('|').pipe(op)).toBe('|');
    expectObservable(cold<never>('-').pipe(op)).toBe('-');
    const long = cold('a-a-a', { a: empty });
    expectObservable(long.pipe(op, map((b) => b.size)), '^-!').toBe('a-', { a: 0 });
    expectSubscriptions(long.subscriptions).toBe('^-!');
  });
}
