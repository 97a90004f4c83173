import { map } from 'rxjs';
import type { UserHistory } from '../../schemas/history';
import { rollingHistory, type HistoryState } from './rollingHistory';
import { eventBatch, interaction as ev, summary, testScheduler, expectStreamSemantics } from './testing/marbles';

class MapState implements HistoryState {
  readonly map = new Map<string, UserHistory>();
  puts = 0;
  get(userId: string): UserHistory | undefined {
    return this.map.get(userId);
  }
  put(h: UserHistory): void {
    this.puts++;
    this.map.set(h.userId, h);
  }
}

describe('rollingHistory', () => {
  it('keeps the last N items per user in time order, places out-of-order events by ts, and rejects late ones', () => {
    const state = new MapState();
    testScheduler().run(({ cold, expectObservable }) => {
      const a = eventBatch([ev('1', 'u', 'A', 1000), ev('2', 'u', 'B', 2000), ev('3', 'v', 'X', 5000), ev('4', 'u', 'C', 1500)]);
      const b = eventBatch([ev('5', 'u', 'D', 3000), ev('6', 'u', 'E', 100), ev('7', 'u', 'F', 2999)], 4);
      const out = cold('a-b|', { a, b }).pipe(rollingHistory({ state, maxLength: 3, toleranceMs: 1000, now: () => 42 }), map(summary));
      expectObservable(out).toBe('a-b|', {
        a: { ids: ['1', '2', '3', '4'], dead: [], skipped: 0 },
        b: { ids: ['5', '7'], dead: ['5:late'], skipped: 0 },
      });
    });
    const u = state.get('u')!;
    // A(1000) C(1500) B(2000) D(3000) F(2999): last 3 by time = B, F, D
    expect(u.itemIds).toEqual(['B', 'F', 'D']);
    expect(u.timestamps).toEqual([2000, 2999, 3000]);
    expect(u.eventIds).toEqual(['2', '7', '5']);
    expect(u.newestTs).toBe(3000);
    expect(u.offsets).toEqual({ 'interactions/0': 6 });
    expect(state.get('v')?.itemIds).toEqual(['X']);
    // one put per user touched per batch (coalesced)
    expect(state.puts).toBe(3);
  });

  it('updates the stored history in place, trims the oldest entries, and puts every touched user back', () => {
    const state = new MapState();
    testScheduler().run(({ cold }) => {
      cold('a|', { a: eventBatch([ev('1', 'u', 'A', 1)]) }).pipe(rollingHistory({ state, maxLength: 2, toleranceMs: 0 })).subscribe();
    });
    const before = state.get('u')!;
    const putsBefore = state.puts;
    testScheduler().run(({ cold }) => {
      cold('a|', { a: eventBatch([ev('2', 'u', 'B', 2), ev('3', 'u', 'C', 3)], 1) }).pipe(rollingHistory({ state, maxLength: 2, toleranceMs: 0 })).subscribe();
    });
    // The store's object is the live history (no per-batch copy); the store serialises what it
    // persists when a flush starts, so later updates cannot change a flush in progress.
    expect(state.get('u')).toBe(before);
    expect(before.itemIds).toEqual(['B', 'C']);
    expect(before.timestamps).toEqual([2, 3]);
    expect(before.eventIds).toEqual(['2', '3']);
    expect(state.puts - putsBefore).toBe(1);
  });

  it('passes errors, empty, never and unsubscription through', () => {
    expectStreamSemantics(rollingHistory({ state: new MapState(), maxLength: 5, toleranceMs: 0 }), eventBatch([]));
  });
});
