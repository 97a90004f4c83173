import { microBatch } from './microBatch';
import { testScheduler } from './testing/marbles';

describe('microBatch', () => {
  it('emits when the count is reached or the wait since the first item has passed', () => {
    testScheduler().run(({ cold, expectObservable }) => {
      // count 3 reached at frame 2; then d at 4 starts a timer of 5 frames -> emits [d, e] at frame 9
      const src = cold('abc-d-e-------|');
      expectObservable(src.pipe(microBatch({ maxCount: 3, maxWaitMs: 5 }))).toBe('--x------y----|', {
        x: ['a', 'b', 'c'],
        y: ['d', 'e'],
      });
    });
  });

  it('flushes the partial batch on completion and never emits empty batches', () => {
    testScheduler().run(({ cold, expectObservable }) => {
      expectObservable(cold('a-b|').pipe(microBatch({ maxCount: 10, maxWaitMs: 100 }))).toBe('---(x|)', { x: ['a', 'b'] });
      expectObservable(cold('----------|').pipe(microBatch({ maxCount: 2, maxWaitMs: 2 }))).toBe('----------|');
    });
  });

  it('drops the partial batch and passes the error on', () => {
    testScheduler().run(({ cold, expectObservable }) => {
      expectObservable(cold('ab-#').pipe(microBatch({ maxCount: 2, maxWaitMs: 100 }))).toBe('-x-#', { x: ['a', 'b'] });
      expectObservable(cold('a-#').pipe(microBatch({ maxCount: 5, maxWaitMs: 100 }))).toBe('--#');
    });
  });

  it('stays silent on never and cancels its timer when unsubscribed', () => {
    testScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      expectObservable(cold<never>('-').pipe(microBatch({ maxCount: 2, maxWaitMs: 3 }))).toBe('-');
      const src = cold('a---------');
      expectObservable(src.pipe(microBatch({ maxCount: 2, maxWaitMs: 5 })), '^--!').toBe('----');
      expectSubscriptions(src.subscriptions).toBe('^--!');
    });
  });

  it('rejects invalid options with a clear error', () => {
    expect(() => microBatch({ maxCount: 0, maxWaitMs: 1 })).toThrow(/maxCount must be an integer >= 1, got 0/);
    expect(() => microBatch({ maxCount: 1, maxWaitMs: 0 })).toThrow(/maxWaitMs must be > 0, got 0/);
  });
});
