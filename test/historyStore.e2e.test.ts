import type { UserHistory } from '../schemas/history';
import { kafkaKind, testKafka, testKafkaConfig, uniqueName } from './kafka';
import { WorkerProducer } from '../infra/kafka';
import { testHistory as history } from '../infra/history/testing/histories';
import { ChangelogHistoryStore, MemoryHistoryStore, followChangelog, isStale, type HistoryStore } from '../infra/history';

/** The contract every HistoryStore keeps, run against each implementation. */
function contract(name: string, make: () => HistoryStore): void {
  describe(`HistoryStore contract: ${name}`, () => {
    let store: HistoryStore;
    beforeEach(() => {
      store = make();
    });
    afterEach(async () => {
      await store.close();
    });

    it('reads back what was put, with offsets and sessions', async () => {
      store.put(history('a', 0, ['x', 'y'], 7));
      expect(store.get('a')?.itemIds).toEqual(['x', 'y']);
      expect(store.appliedOffset('a', 'interactions', 0)).toBe(7);
      expect(store.appliedOffset('a', 'interactions', 1)).toBe(-1);
      expect(store.appliedOffset('nobody', 'interactions', 0)).toBe(-1);
      store.setSession('a', { index: 3, startTs: 1, lastTs: 2 });
      expect(store.getSession('a')).toEqual({ index: 3, startTs: 1, lastTs: 2 });
      expect(await store.flush()).toBe(1); // one record per user touched, however often
      expect(await store.flush()).toBe(0);
      expect(store.size).toBe(1);
    });

    it('forgets the users of dropped partitions, with their unflushed changes', async () => {
      store.put(history('a', 0, ['x'], 1));
      store.put(history('b', 1, ['y'], 2));
      expect(store.dropPartitions([1])).toBe(1);
      expect(store.get('b')).toBeUndefined();
      expect(store.get('a')).toBeDefined();
      expect(await store.flush()).toBe(1);
    });

    it('keeps a high-water mark of applied offsets per source partition', () => {
      expect(store.highestApplied('interactions', 0)).toBe(-1);
      store.put(history('a', 0, ['x'], 7));
      store.put(history('b', 0, ['y'], 3));
      store.put({ ...history('c', 1, ['z'], 5), offsets: { 'interactions/1': 5, 'interactions/2': 9 } });
      expect(store.highestApplied('interactions', 0)).toBe(7);
      expect(store.highestApplied('interactions', 1)).toBe(5);
      expect(store.highestApplied('interactions', 2)).toBe(9);
      expect(store.highestApplied('catalog', 0)).toBe(-1);
      // Never lowered (an over-estimate only costs per-event checks; dropping forgets users, not marks).
      store.dropPartitions([0]);
      expect(store.highestApplied('interactions', 0)).toBe(7);
    });
  });
}

contract('memory', () => new MemoryHistoryStore());
contract(`changelog on ${kafkaKind()}`, () => new ChangelogHistoryStore({ kafka: testKafka(), topic: uniqueName('changelog') }));
contract(
  `changelog written by a worker thread on ${kafkaKind()}`,
  () => new ChangelogHistoryStore({ kafka: testKafka(), topic: uniqueName('changelog'), writer: new WorkerProducer(testKafkaConfig()) }),
);

describe(`ChangelogHistoryStore on ${kafkaKind()}`, () => {
  it('restores the latest history per user in a new store, by partition, and serving can follow it', async () => {
    const kafka = testKafka();
    const topic = uniqueName('changelog');
    const writer = new ChangelogHistoryStore({ kafka, topic });
    writer.put(history('a', 0, ['x'], 1));
    writer.put(history('b', 1, ['y'], 2));
    await writer.flush();
    writer.put(history('a', 0, ['x', 'z'], 3));
    await writer.flush();
    await writer.close();

    const reader = new ChangelogHistoryStore({ kafka, topic });
    const stats = await reader.restore();
    expect(stats.records).toBe(3);
    expect(stats.users).toBe(2);
    expect(reader.get('a')?.itemIds).toEqual(['x', 'z']);
    expect(reader.appliedOffset('a', 'interactions', 0)).toBe(3);
    expect(reader.get('b')?.itemIds).toEqual(['y']);
    expect(reader.highestApplied('interactions', 0)).toBe(3);
    expect(reader.highestApplied('interactions', 1)).toBe(2);

    const partial = new ChangelogHistoryStore({ kafka, topic });
    await partial.restore([1]);
    expect(partial.get('a')).toBeUndefined();
    expect(partial.get('b')?.itemIds).toEqual(['y']);

    const followed = new Map<string, UserHistory | null>();
    const follower = await followChangelog(kafka, topic, { onHistory: (userId, h) => followed.set(userId, h) });
    const deadline = Date.now() + 30_000;
    while (followed.get('a')?.itemIds.length !== 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    await follower.stop();
    expect(followed.get('a')?.itemIds).toEqual(['x', 'z']);
    expect(followed.get('b')?.itemIds).toEqual(['y']);
  });

  it('keeps the state that applied more of the source when a stale record arrives late (rebalance race)', async () => {
    const kafka = testKafka();
    const topic = uniqueName('changelog');
    const newOwner = new ChangelogHistoryStore({ kafka, topic });
    newOwner.put(history('a', 0, ['x', 'y', 'z'], 30));
    await newOwner.flush();
    // The previous owner's in-flight flush lands afterwards with older state.
    const oldOwner = new ChangelogHistoryStore({ kafka, topic });
    oldOwner.put(history('a', 0, ['x'], 10));
    await oldOwner.flush();
    await Promise.all([newOwner.close(), oldOwner.close()]);
    const restored = new ChangelogHistoryStore({ kafka, topic });
    await restored.restore();
    expect(restored.get('a')?.itemIds).toEqual(['x', 'y', 'z']);
    expect(isStale(history('a', 0, ['x'], 10), history('a', 0, ['x', 'y'], 11))).toBe(true);
    expect(isStale(history('a', 0, ['x', 'y'], 11), history('a', 0, ['x'], 11))).toBe(false);
  });

  it('writes the histories as they were when the flush was prepared, not later in-place updates', async () => {
    const kafka = testKafka();
    const topic = uniqueName('changelog');
    const writer = new ChangelogHistoryStore({ kafka, topic });
    writer.put(history('a', 0, ['x'], 1));
    const prepared = writer.prepareFlush();
    // Ingest keeps updating the live object while the prepared flush is being written.
    const live = writer.get('a')!;
    live.itemIds.push('late');
    live.offsets['interactions/0'] = 2;
    await prepared.write();
    await writer.close();
    const reader = new ChangelogHistoryStore({ kafka, topic });
    await reader.restore();
    expect(reader.get('a')?.itemIds).toEqual(['x']);
    expect(reader.appliedOffset('a', 'interactions', 0)).toBe(1);
    await reader.close();
  });

  it('restores what a worker-thread writer wrote, as it was when the flush was prepared', async () => {
    const kafka = testKafka();
    const topic = uniqueName('changelog');
    const writer = new ChangelogHistoryStore({ kafka, topic, writer: new WorkerProducer(testKafkaConfig()) });
    for (let u = 0; u < 500; u++) writer.put(history(`u${u}`, u % 4, [`i${u}`], u));
    const prepared = writer.prepareFlush();
    writer.get('u1')!.itemIds.push('late');
    await prepared.write();
    writer.put(history('u7', 3, ['i7', 'again'], 900));
    expect(await writer.flush()).toBe(1);
    await writer.close();
    const reader = new ChangelogHistoryStore({ kafka, topic });
    const stats = await reader.restore();
    expect(stats).toMatchObject({ records: 501, users: 500, invalid: 0 });
    expect(reader.get('u1')?.itemIds).toEqual(['i1']);
    expect(reader.get('u7')?.itemIds).toEqual(['i7', 'again']);
    expect(reader.get('u499')?.partition).toBe(3);
    await reader.close();
  });

  it('restores nothing from a topic that does not exist yet', async () => {
    const store = new ChangelogHistoryStore({ kafka: testKafka(), topic: uniqueName('empty-changelog') });
    const stats = await store.restore();
    expect(stats.records).toBe(0);
    expect(store.size).toBe(0);
  });
});
