import { map } from 'rxjs';
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
