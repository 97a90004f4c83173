import { Instrumentation } from '../instrumentation';
import { IngestMetrics } from './metrics';
import { syntheticInteractions } from './synthetic';
import { replayBatches } from './replay';
import { startIngest } from './run';
import { StreamrecConfig } from '../schemas/config';

describe('ingest Prometheus metrics', () => {
  it('count accepted messages, dead letters by code and users, as an operator scrapes them', async () => {
    const now = Date.now();
    const messages = [
      ...syntheticInteractions({ count: 2000, users: 50, items: 100, badRate: 0.05, seed: 4, startTs: now - 86_400_000, now, toleranceMs: 600_000, maxMessageBytes: 65_536 }),
    ];
    const config = StreamrecConfig.parse({ ingest: { historyStore: 'memory', archive: false } });
    const batches = replayBatches(
      messages.map((m) => ({ stream: 'interactions' as const, key: m.key, value: m.value })),
      { topics: config.ingest.topics, partitions: 2, batchSize: 300 },
    );
    const runtime = await startIngest({ config, batches });
    await runtime.done;
    const text = await runtime.metrics.registry.metrics();
    const value = (pattern: RegExp): number => Number(pattern.exec(text)?.[1] ?? NaN);
    const bad = messages.filter((m) => m.expected !== undefined);
    expect(value(/streamrec_ingest_messages_total\{topic="interactions",result="accepted"\} (\d+)/)).toBe(messages.length - bad.length);
    expect(value(/streamrec_ingest_messages_total\{topic="interactions",result="dead_letter"\} (\d+)/)).toBe(bad.length);
    const late = bad.filter((m) => m.expected === 'late').length;
    expect(value(/streamrec_ingest_dead_letters_total\{topic="interactions",code="late"\} (\d+)/)).toBe(late);
    expect(value(/streamrec_history_users (\d+)/)).toBe(runtime.store.size);
    expect(value(/streamrec_ingest_flush_seconds_count (\d+)/)).toBeGreaterThanOrEqual(1);
    expect(value(/streamrec_ingest_consumer_restarts (\d+)/)).toBe(0); // in-process source: no consumer
  });

  it('count fetches per broker, time them, and keep a lag per owned partition until it is revoked', async () => {
    const instrumentation = new Instrumentation();
    const metrics = new IngestMetrics();
    const detach = metrics.attach(instrumentation);
    instrumentation.emit('ingest.fetch_end', { broker: 1, durationMs: 3 });
    instrumentation.emit('ingest.fetch_end', { broker: 1, durationMs: 40 });
    instrumentation.emit('ingest.fetch_end', { broker: 2, durationMs: 700 });
    instrumentation.emit('ingest.partition_lag', { topic: 't', partition: 0, lag: 500 });
    instrumentation.emit('ingest.partition_lag', { topic: 't', partition: 1, lag: 9 });
    instrumentation.emit('ingest.partition_lag', { topic: 't', partition: 0, lag: 120 });
    let text = await metrics.registry.metrics();
    const value = (pattern: RegExp): number => Number(pattern.exec(text)?.[1] ?? NaN);
    expect(value(/streamrec_ingest_fetches_total\{broker="1"\} (\d+)/)).toBe(2);
    expect(value(/streamrec_ingest_fetches_total\{broker="2"\} (\d+)/)).toBe(1);
    expect(value(/streamrec_ingest_fetch_seconds_count (\d+)/)).toBe(3);
    expect(value(/streamrec_ingest_fetch_seconds_bucket\{le="0.05"\} (\d+)/)).toBe(2);
    expect(value(/streamrec_ingest_consumer_lag\{topic="t",partition="0"\} (\d+)/)).toBe(120);
    expect(value(/streamrec_ingest_consumer_lag\{topic="t",partition="1"\} (\d+)/)).toBe(9);

    instrumentation.emit('ingest.assignment', { topic: 't', assigned: [], revoked: [1] });
    text = await metrics.registry.metrics();
    expect(text).not.toMatch(/streamrec_ingest_consumer_lag\{topic="t",partition="1"\}/);
    expect(value(/streamrec_ingest_consumer_lag\{topic="t",partition="0"\} (\d+)/)).toBe(120);

    detach();
    instrumentation.emit('ingest.fetch_end', { broker: 1, durationMs: 3 });
    text = await metrics.registry.metrics();
    expect(value(/streamrec_ingest_fetches_total\{broker="1"\} (\d+)/)).toBe(2);
  });
});
