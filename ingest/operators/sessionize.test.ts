import { map } from 'rxjs';
import { sessionize, type SessionMark, type SessionState } from './sessionize';
import { eventBatch, interaction as ev, testScheduler, expectStreamSemantics } from './testing/marbles';

class MapSessions implements SessionState {
  readonly marks = new Map<string, SessionMark>();
  getSession(userId: string): SessionMark | undefined {
    return this.marks.get(userId);
  }
  setSession(userId: string, mark: SessionMark): void {
    this.marks.set(userId, mark);
  }
}

const MIN = 60_000;

describe('sessionize', () => {
  it('starts a new session after an inactivity gap, per user, across batches', () => {
    const state = new MapSessions();
    testScheduler().run(({ cold, expectObservable }) => {
      const a = eventBatch([ev('1', 'u', 'A', 0), ev('2', 'u', 'B', 29 * MIN), ev('3', 'v', 'C', 0), ev('4', 'u', 'D', 60 * MIN)]);
      const b = eventBatch([ev('5', 'u', 'E', 89 * MIN), ev('6', 'u', 'F', 80 * MIN), ev('7', 'v', 'G', 31 * MIN)], 4);
      const out = cold('ab|', { a, b }).pipe(
        sessionize({ gapMs: 30 * MIN, state }),
        map((batch) => batch.events.map((e) => `${e.event.eventId}:${e.sessionIndex}`)),
      );
      expectObservable(out).toBe('ab|', { a: ['1:0', '2:0', '3:0', '4:1'], b: ['5:1', '6:1', '7:1'] });
    });
    expect(state.getSession('u')).toEqual({ index: 1, startTs: 60 * MIN, lastTs: 89 * MIN });
  });

  it('continues numbering from a restored mark', () => {
    const state = new MapSessions();
    state.setSession('u', { index: 4, startTs: 0, lastTs: 1000 });
    testScheduler().run(({ cold, expectObservable }) => {
      const out = cold('a|', { a: eventBatch([ev('1', 'u', 'A', 2000), ev('2', 'u', 'B', 10 * MIN)]) }).pipe(
        sessionize({ gapMs: 5 * MIN, state }),
        map((batch) => batch.events.map((e) => e.sessionIndex)),
      );
      expectObservable(out).toBe('a|', { a: [4, 5] });
    });
  });

  it('passes errors, empty, never and unsubscription through', () => {
    expectStreamSemantics(sessionize({ gapMs: 1, state: new MapSessions() }), eventBatch([]));
  });
});
