import { parseKafkaUrl } from '../infra/kafka';
import type { ReplayEvent } from '../datasets';
import { limitInteractions, pacedReplayBatches, parseSpeed, partitionOf, ReplayClock, replayBatches } from './replay';

const interaction = (userId: string, ts: number): ReplayEvent => ({ kind: 'interaction', event: { eventId: `${userId}-${ts}`, userId, itemId: 'i1', type: 'view', ts } });
const item = (itemId: string): ReplayEvent => ({ kind: 'item', event: { itemId, ts: 0 } });

/** A clock that only moves when a fake sleep is awaited. */
function fakeTime(): { now: () => number; sleep: (ms: number) => Promise<void>; sleeps: number[] } {
  let t = 1_000_000;
  const sleeps: number[] = [];
  return {
    now: () => t,
    sleep: async (ms) => {
      sleeps.push(ms);
      t += ms;
    },
    sleeps,
  };
}

describe('replay helpers', () => {
  it('parses speeds and rejects nonsense with the expected form', () => {
    expect(parseSpeed('max')).toBe('max');
    expect(parseSpeed('3600x')).toEqual({ factor: 3600 });
    expect(parseSpeed('0.5')).toEqual({ factor: 0.5 });
    expect(() => parseSpeed('fast')).toThrow(/"max" or a positive factor such as 3600x, got "fast"/);
    expect(() => parseSpeed('-2x')).toThrow(/positive factor/);
  });

  it('parses kafka:// URLs with one or more brokers and an optional topic', () => {
    expect(parseKafkaUrl('kafka://localhost:9092/interactions')).toEqual({ brokers: ['localhost:9092'], topic: 'interactions' });
    expect(parseKafkaUrl('kafka://a:1,b:2')).toEqual({ brokers: ['a:1', 'b:2'] });
    expect(() => parseKafkaUrl('http://a:1')).toThrow(/expected kafka:\/\/host:port/);
    expect(() => parseKafkaUrl('kafka://nohost/t')).toThrow(/broker "nohost" is not host:port/);
  });

  it('partitions by key like a keyed producer: stable, in range, spread out', () => {
    const counts = [0, 0, 0, 0];
    for (let u = 0; u < 4000; u++) {
      const p = partitionOf(`user-${u}`, 4);
      expect(partitionOf(`user-${u}`, 4)).toBe(p);
      counts[p]!++;
    }
    for (const c of counts) expect(c).toBeGreaterThan(800);
  });

  it('batches messages per topic-partition with consecutive offsets and keeps each key in order', () => {
    const messages = Array.from({ length: 50 }, (_, i) => ({ stream: 'interactions' as const, key: `u${i % 7}`, value: Buffer.from(String(i)) }));
    const batches = [...replayBatches(messages, { topics: { interactions: 'in', catalog: 'cat' }, partitions: 3, batchSize: 4 })];
    const offsets = new Map<number, number[]>();
    const seenByKey = new Map<string, number[]>();
    for (const b of batches) {
      expect(b.topic).toBe('in');
      expect(b.messages.length).toBeLessThanOrEqual(50);
      for (const m of b.messages) {
        offsets.set(b.partition, [...(offsets.get(b.partition) ?? []), Number(m.offset)]);
        const key = m.key!.toString();
        seenByKey.set(key, [...(seenByKey.get(key) ?? []), Number(m.value!.toString())]);
      }
    }
    for (const list of offsets.values()) expect(list).toEqual(list.map((_, i) => i));
    for (const list of seenByKey.values()) expect(list).toEqual([...list].sort((a, b) => a - b));
    expect([...seenByKey.values()].reduce((n, l) => n + l.length, 0)).toBe(50);
  });

  it('makes each interaction due at its event-time distance from the first, divided by the factor', () => {
    let now = 500;
    const clock = new ReplayClock({ factor: 1000 }, () => now);
    expect(clock.delayOf(item('a'))).toBe(0); // catalog events are never held back
    expect(clock.delayOf(interaction('u1', 10_000_000))).toBe(0); // the first one goes at once
    expect(clock.delayOf(interaction('u1', 10_060_000))).toBe(60); // one minute later at 1000x: 60 ms
    now += 50;
    expect(clock.delayOf(interaction('u2', 10_060_000))).toBe(10); // 50 ms of it have passed
    expect(clock.delayOf(interaction('u2', 10_000_000))).toBe(0); // older than one sent: at once
    now += 500;
    expect(clock.delayOf(interaction('u3', 10_120_000))).toBe(0); // behind schedule: at once
    expect(new ReplayClock('max', () => now).delayOf(interaction('u1', 99e12))).toBe(0);
  });

  it('cuts a replay after the given number of interactions, keeping the catalog events before it', () => {
    const events = [item('a'), interaction('u1', 1), item('b'), interaction('u2', 2), interaction('u3', 3), item('c')];
    expect([...limitInteractions(events, 2)]).toEqual(events.slice(0, 4));
    expect([...limitInteractions(events, 0)]).toEqual([item('a')]);
    expect([...limitInteractions(events, Infinity)]).toEqual(events);
  });

  it('paces in-process batches by event time: what is buffered goes out before each pause', async () => {
    const time = fakeTime();
    // Two bursts of 5 interactions, 10 minutes of event time apart, replayed at 600x (1 s apart).
    const events = [item('a'), ...[0, 1, 2, 3, 4].map((i) => interaction(`u${i}`, 1_000 + i)), ...[0, 1, 2, 3, 4].map((i) => interaction(`u${i}`, 601_000 + i))];
    const seen: Array<{ at: number; messages: number }> = [];
    for await (const batch of pacedReplayBatches(events, { topics: { interactions: 'in', catalog: 'cat' }, partitions: 2, clock: new ReplayClock({ factor: 600 }, time.now), sleep: time.sleep })) {
      seen.push({ at: time.now(), messages: batch.messages.length });
    }
    expect(time.sleeps).toEqual([1000]);
    const before = seen.filter((b) => b.at === 1_000_000).reduce((n, b) => n + b.messages, 0);
    const after = seen.filter((b) => b.at === 1_001_000).reduce((n, b) => n + b.messages, 0);
    expect({ before, after }).toEqual({ before: 6, after: 5 });
  });

  it('stops a paced replay when its signal aborts, also in the middle of a pause', async () => {
    const controller = new AbortController();
    const events = [interaction('u1', 0), interaction('u1', 3_600_000), interaction('u1', 7_200_000)];
    const started = Date.now();
    const batches: number[] = [];
    setTimeout(() => controller.abort(), 100);
    // At 1x the second event is an hour away: only the abort ends the wait.
    for await (const b of pacedReplayBatches(events, { topics: { interactions: 'in', catalog: 'cat' }, clock: new ReplayClock({ factor: 1 }), signal: controller.signal })) batches.push(b.messages.length);
    expect(batches).toEqual([1]);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('never puts more than batchSize messages in a batch, whatever the keys', () => {
    const messages = Array.from({ length: 25 }, (_, i) => ({ stream: 'interactions' as const, key: 'same-user', value: Buffer.from(String(i)) }));
    const batches = [...replayBatches(messages, { topics: { interactions: 'in', catalog: 'cat' }, partitions: 4, batchSize: 10 })];
    expect(batches.map((b) => b.messages.length)).toEqual([10, 10, 5]);
    expect(batches.flatMap((b) => b.messages.map((m) => Number(m.offset)))).toEqual([...Array(25).keys()]);
  });

  it('does not hold back a topic with few messages per partition until the end', () => {
    // A small catalog first, then many interactions: the catalog goes out with the first drain.
    // With the interactions' keys spread out and all on one key (one partition).
    for (const keys of [13, 1]) {
      const messages = [
        ...Array.from({ length: 6 }, (_, i) => ({ stream: 'catalog' as const, key: `item${i}`, value: Buffer.from(`c${i}`) })),
        ...Array.from({ length: 200 }, (_, i) => ({ stream: 'interactions' as const, key: `u${i % keys}`, value: Buffer.from(String(i)) })),
      ];
      const batches = [...replayBatches(messages, { topics: { interactions: 'in', catalog: 'cat' }, partitions: 2, batchSize: 10 })];
      const lastCatalog = batches.map((b) => b.topic).lastIndexOf('cat');
      // Out with the first drain: at most one round's worth of interactions before it.
      const before = batches.slice(0, lastCatalog).filter((b) => b.topic === 'in').reduce((n, b) => n + b.messages.length, 0);
      expect({ keys, before: before <= 20 }).toEqual({ keys, before: true });
      expect(batches.reduce((n, b) => n + b.messages.length, 0)).toBe(206);
      for (const b of batches) expect(b.messages.length).toBeLessThanOrEqual(10);
    }
  });
});
