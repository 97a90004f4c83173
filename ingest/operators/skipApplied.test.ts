import { map } from 'rxjs';
import { skipApplied } from './skipApplied';
import { eventBatch, interaction as ev, summary, testScheduler, expectStreamSemantics } from './testing/marbles';

describe('skipApplied', () => {
  it('drops events at or below the applied offset and counts them as skipped', () => {
    const applied = new Map([['u', 1]]);
    testScheduler().run(({ cold, expectObservable }) => {
      const a = eventBatch([ev('1', 'u', 'A', 1), ev('2', 'u', 'B', 2), ev('3', 'u', 'C', 3), ev('4', 'v', 'D', 4)]);
      const out = cold('a|', { a }).pipe(skipApplied((e) => (applied.get(e.event.userId) ?? -1) >= e.offset), map(summary));
      expectObservable(out).toBe('a|', { a: { ids: ['3', '4'], dead: [], skipped: 2 } });
    });
  });

  it('passes errors, empty, never and unsubscription through', () => {
    expectStreamSemantics(skipApplied(() => false), eventBatch([]));
  });
});
