import { MemoryHistoryStore } from '../infra/history';
import { LocalHistories, MemoryHistories } from './historyView';

describe('LocalHistories', () => {
  it("reads an ingest history store as it changes: a history is visible as soon as it is put, and counts toward the users", () => {
    const store = new MemoryHistoryStore();
    const view = new LocalHistories(store);
    expect(view.get('u1')).toBeUndefined();
    expect(view.stats()).toEqual({ users: 0, caughtUp: true, newestChangeAgeMs: undefined });
    store.put({
      userId: 'u1',
      itemIds: ['a', 'b'],
      timestamps: [1, 2],
      eventIds: ['e1', 'e2'],
      newestTs: 2,
      session: { index: 0, startTs: 1, lastTs: 2 },
      offsets: { 'interactions/0': 1 },
      partition: 0,
      updatedAt: 2,
    });
    expect(view.get('u1')?.itemIds).toEqual(['a', 'b']);
    expect([...view.values()].map((h) => h.itemIds)).toEqual([['a', 'b']]);
    expect(view.stats().users).toBe(1);
  });
});

describe('MemoryHistories', () => {
  it('keeps a copy of what was put and reports the age of the newest change', () => {
    let now = 1000;
    const view = new MemoryHistories(() => now);
    const items = ['a'];
    view.put('u1', items, [5]);
    items.push('b');
    now = 1500;
    expect(view.get('u1')?.itemIds).toEqual(['a']);
    expect(view.stats()).toEqual({ users: 1, caughtUp: true, newestChangeAgeMs: 500 });
  });
});
