import { parseKafkaUrl } from '../infra/kafka';
import { parseSpeed, partitionOf, replayBatches } from './replay';

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
});
