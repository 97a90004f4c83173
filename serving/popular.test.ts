import { MemoryHistories, type HistoryView } from './historyView';
import { PopularItems } from './popular';

/** `histories` counting the walks over every history (what a count does, and a request must not). */
function counted(histories: HistoryView): { view: HistoryView; walks: () => number } {
  let walks = 0;
  return {
    walks: () => walks,
    view: {
      get: (userId) => histories.get(userId),
      values: () => {
        walks++;
        return histories.values();
      },
      stats: () => histories.stats(),
    },
  };
}

describe('PopularItems', () => {
  afterEach(() => jest.useRealTimers());

  it('counts the recent window at construction and on its timer; reading the top items never walks the histories', async () => {
    jest.useFakeTimers();
    const histories = new MemoryHistories();
    histories.put('a', ['x', 'y', 'z'], [1000, 5000, 9000]);
    histories.put('b', ['y', 'z'], [8000, 9500]);
    const { view, walks } = counted(histories);
    const popular = new PopularItems(view, { windowMs: 2000, refreshMs: 30_000, keep: 10 });
    try {
      await popular.refresh(); // the count started at construction
      // The window is 2 s back from the newest event (9.5 s): y at 8 s, z twice.
      expect(popular.top()).toEqual([
        { itemId: 'z', count: 2 },
        { itemId: 'y', count: 1 },
      ]);
      const afterCount = walks();
      histories.put('c', ['w', 'w'], [9600, 9700]);
      // Long past the refresh interval, read by requests: the last count, no walk.
      jest.setSystemTime(Date.now() + 10 * 60_000);
      for (let i = 0; i < 100; i++) popular.top();
      expect(walks()).toBe(afterCount);
      expect(popular.top()[0]).toEqual({ itemId: 'z', count: 2 });
      // The timer counts again.
      await jest.advanceTimersByTimeAsync(30_000);
      expect(walks()).toBeGreaterThan(afterCount);
      expect(popular.top()[0]).toEqual({ itemId: 'w', count: 2 });
      expect(popular.top().map((p) => p.itemId)).toEqual(['w', 'z', 'y']); // ties in id order
    } finally {
      popular.close();
    }
  });

  it('started before any history is read, counts every second until it finds items, then every refreshMs', async () => {
    jest.useFakeTimers();
    const histories = new MemoryHistories();
    const { view, walks } = counted(histories);
    const popular = new PopularItems(view, { windowMs: 2000, refreshMs: 30_000, keep: 10 });
    try {
      await popular.refresh();
      expect(popular.top()).toEqual([]);
      histories.put('a', ['x'], [1000]); // the histories come in after the start
      await jest.advanceTimersByTimeAsync(1000);
      expect(popular.top()).toEqual([{ itemId: 'x', count: 1 }]);
      const found = walks();
      await jest.advanceTimersByTimeAsync(10_000);
      expect(walks()).toBe(found); // no more early counts: the next at refreshMs
    } finally {
      popular.close();
    }
  });

  it('counts many histories a slice at a time, letting the event loop in between', async () => {
    const histories = new MemoryHistories();
    for (let u = 0; u < 20_000; u++) histories.put(`u${u}`, [`i${u % 7}`], [1000]);
    const popular = new PopularItems(histories, { windowMs: 1000, refreshMs: 60_000, keep: 3 });
    try {
      let done = false;
      const counting = popular.refresh().then(() => (done = true)); // the count started at construction
      await new Promise((resolve) => setImmediate(resolve));
      expect(done).toBe(false); // a turn of the event loop came before the count's end
      expect(popular.top()).toEqual([]);
      await counting;
      expect(popular.top()).toEqual([
        { itemId: 'i0', count: 2858 },
        { itemId: 'i1', count: 2857 },
        { itemId: 'i2', count: 2857 },
      ]);
    } finally {
      popular.close();
    }
  });
});
