import { from, map } from 'rxjs';
import { dedupeEvents } from './dedupeEvents';
import { eventBatch, interaction as ev, summary, testScheduler, expectStreamSemantics } from './testing/marbles';

describe('dedupeEvents', () => {
  it('passes the first copy and dead-letters later copies, within and across batches', () => {
    testScheduler().run(({ cold, expectObservable }) => {
      const a = eventBatch([ev('e1', 'u', 'i', 1), ev('e2', 'u', 'i', 2), ev('e1', 'u', 'i', 1)]);
      const b = eventBatch([ev('e2', 'u', 'i', 2), ev('e3', 'u', 'i', 3)], 3);
      const out = cold('a-b|', { a, b }).pipe(dedupeEvents({ maxIds: 100, windowMs: 1000, now: () => 0 }), map(summary));
      expectObservable(out).toBe('a-b|', {
        a: { ids: ['e1', 'e2'], dead: ['2:duplicate'], skipped: 0 },
        b: { ids: ['e3'], dead: ['3:duplicate'], skipped: 0 },
      });
    });
  });

  it('names where the first copy was seen', () => {
    testScheduler().run(({ cold }) => {
      cold('a|', { a: eventBatch([ev('e1', 'u', 'i', 1), ev('e1', 'u', 'i', 1)], 7) })
        .pipe(dedupeEvents({ maxIds: 10, windowMs: 10 }))
        .subscribe((b) => expect(b.deadLetters[0]?.error.message).toBe('eventId: "e1" already seen (interactions/0@7)'));
    });
  });

  it('forgets ids beyond the count bound and outside the event-time window', () => {
    testScheduler().run(({ cold, expectObservable }) => {
      const a = eventBatch([ev('a', 'u', 'i', 0), ev('b', 'u', 'i', 1), ev('c', 'u', 'i', 2)]);
      const b = eventBatch([ev('a', 'u', 'i', 3)], 3); // 'a' was evicted: maxIds 2
      const c = eventBatch([ev('z', 'u', 'i', 5000), ev('c', 'u', 'i', 5001)], 4); // 'c' (ts 2) is out of the 1000 ms window
      const out = cold('abc|', { a, b, c }).pipe(dedupeEvents({ maxIds: 2, windowMs: 1000 }), map(summary));
      expectObservable(out).toBe('abc|', {
        a: { ids: ['a', 'b', 'c'], dead: [], skipped: 0 },
        b: { ids: ['a'], dead: [], skipped: 0 },
        c: { ids: ['z', 'c'], dead: [], skipped: 0 },
      });
    });
  });

  it('still names the first copy after the window has compacted its oldest entries', () => {
    // 200,000 ids through a 70,000-id window: the arrays are compacted (every 65,536 evictions)
    // and the remembered positions must still point at the right entries.
    const op = dedupeEvents({ maxIds: 70_000, windowMs: 1e12, now: () => 0 });
    const batches = Array.from({ length: 200 }, (_, b) =>
      eventBatch(Array.from({ length: 1000 }, (_, i) => ev(`e${b * 1000 + i}`, 'u', 'i', b * 1000 + i)), b * 1000, b % 3),
    );
    const last = eventBatch([ev('e199998', 'u', 'i', 1), ev('e150123', 'u', 'i', 1), ev('e100000', 'u', 'i', 1)], 500_000, 7);
    const messages: string[] = [];
    const sizes: number[] = [];
    from([...batches, last])
      .pipe(op)
      .subscribe((b) => {
        sizes.push(b.events.length);
        messages.push(...b.deadLetters.map((d) => d.error.message));
      });
    expect(sizes.slice(0, 200).every((n) => n === 1000)).toBe(true);
    // e100000 was evicted (beyond 70,000 ids ago), so it passes again.
    expect(sizes[200]).toBe(1);
    expect(messages).toEqual([
      'eventId: "e199998" already seen (interactions/1@199998)',
      'eventId: "e150123" already seen (interactions/0@150123)',
    ]);
  });

  it('starts from the initial ids (restored histories)', () => {
    testScheduler().run(({ cold, expectObservable }) => {
      const out = cold('a|', { a: eventBatch([ev('old', 'u', 'i', 1), ev('new', 'u', 'i', 2)]) }).pipe(
        dedupeEvents({ maxIds: 10, windowMs: 100, initial: [{ eventId: 'old', ts: 1 }] }),
        map(summary),
      );
      expectObservable(out).toBe('a|', { a: { ids: ['new'], dead: ['0:duplicate'], skipped: 0 } });
    });
  });

  it('keeps separate state per subscription', () => {
    testScheduler().run(({ cold, expectObservable }) => {
      const op = dedupeEvents({ maxIds: 10, windowMs: 100 });
      const src = cold('a|', { a: eventBatch([ev('x', 'u', 'i', 1)]) });
      expectObservable(src.pipe(op, map((b) => b.events.length))).toBe('a|', { a: 1 });
      expectObservable(src.pipe(op, map((b) => b.events.length))).toBe('a|', { a: 1 });
    });
  });

  it('passes errors, empty, never and unsubscription through', () => {
    expectStreamSemantics(dedupeEvents({ maxIds: 10, windowMs: 100 }), eventBatch([]));
  });
});
