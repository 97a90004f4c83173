import { map } from 'rxjs';
import { skipApplied } from './skipApplied';
import { eventBatch, interaction as ev, summary, testScheduler, expectStreamSemantics } from './testing/marbles';

describe('skipApplied', () => {
  it('drops events at or below the applied offset and counts them as skipped', () => {
    const applied = new Map([['u', 1]]);
    testScheduler().run(({ cold, expectObservable }) => {
      const a = eventBatch([ev('1', 'u', 'A', 1), ev('2', 'u', 'B', 2), ev('3', 'u', 'C', 3), ev('4', 'v', 'D', 4)]);
      const out = cold('a|', { a }).pipe(skipApplied({ isApplied: (e) => (applied.get(e.event.userId) ?? -1) >= e.offset }), map(summary));
      expectObservable(out).toBe('a|', { a: { ids: ['3', '4'], dead: [], skipped: 2 } });
    });
  });

  it('checks events one by one only in batches that start at or below the partition high-water mark', () => {
    const applied = new Map([['u', 11]]);
    const highWater = new Map([['interactions/0', 11], ['interactions/1', 4]]);
    let checked = 0;
    const operator = skipApplied<ReturnType<typeof ev>>({
      isApplied: (e) => {
        checked++;
        return (applied.get(e.event.userId) ?? -1) >= e.offset;
      },
      highestApplied: (topic, partition) => highWater.get(`${topic}/${partition}`) ?? -1,
    });
    testScheduler().run(({ cold, expectObservable }) => {
      const replayed = eventBatch([ev('1', 'u', 'A', 1), ev('2', 'v', 'B', 2), ev('3', 'u', 'C', 3)], 10, 0); // offsets 10..12
      const fresh = eventBatch([ev('4', 'u', 'D', 4), ev('5', 'u', 'E', 5)], 12, 0); // starts above 11
      const otherPartition = eventBatch([ev('6', 'u', 'F', 6)], 5, 1); // starts above partition 1's mark
      const out = cold('abc|', { a: replayed, b: fresh, c: otherPartition }).pipe(operator, map(summary));
      expectObservable(out).toBe('abc|', {
        a: { ids: ['2', '3'], dead: [], skipped: 1 },
        b: { ids: ['4', '5'], dead: [], skipped: 0 },
        c: { ids: ['6'], dead: [], skipped: 0 },
      });
    });
    expect(checked).toBe(3); // only the replayed batch's events
  });

  it('passes errors, empty, never and unsubscription through', () => {
    expectStreamSemantics(skipApplied({ isApplied: () => false }), eventBatch([]));
  });
});
