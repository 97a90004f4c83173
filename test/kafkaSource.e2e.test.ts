import net from 'node:net';
import { Kafka, logLevel, type ConsumerConfig as KafkaConsumerConfig, type ISocketFactory } from 'kafkajs';
import { KafkaError } from '../errors';
import { ensureTopics } from '../infra/history';
import { Instrumentation, type InstrumentationEvents } from '../instrumentation';
import { startIngest } from '../ingest';
import { KafkaSource, type KafkaSourceOptions } from '../ingest/sources';
import type { RawBatch } from '../ingest/types';
import { ConsumerConfig, StreamrecConfig } from '../schemas/config';
import { BrokerErrorCode, BrokerRefusal } from './brokerRefusal';
import { produceAll, waitFor } from './ingestHarness';
import { kafkaKind, testBrokers, testKafka, uniqueName } from './kafka';

/** How the source's `run` settled, observed without letting a rejection go unhandled. */
function settle(run: Promise<void>): { state: () => 'pending' | 'resolved' | 'rejected'; error: () => unknown } {
  let state: 'pending' | 'resolved' | 'rejected' = 'pending';
  let error: unknown;
  run.then(
    () => (state = 'resolved'),
    (e: unknown) => {
      state = 'rejected';
      error = e;
    },
  );
  return { state: () => state, error: () => error };
}

/**
 * The network between a client and the broker, with outages on demand: `cut` closes every open
 * connection and refuses new ones (ECONNREFUSED) until the outage ends. The broker itself runs on.
 */
class FlakyNetwork {
  private readonly sockets = new Set<net.Socket>();
  private downUntil = 0;
  refused = 0;

  readonly socketFactory: ISocketFactory = ({ host, port, onConnect }) => {
    if (Date.now() < this.downUntil) {
      this.refused++;
      const socket = new net.Socket();
      setImmediate(() => socket.destroy(Object.assign(new Error(`connect ECONNREFUSED ${host}:${port} (injected outage)`), { code: 'ECONNREFUSED' })));
      return socket;
    }
    const socket = net.connect({ host, port }, onConnect);
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    return socket;
  };

  cut(ms: number): void {
    this.downUntil = Date.now() + ms;
    for (const socket of this.sockets) socket.destroy(Object.assign(new Error('read ECONNRESET (injected outage)'), { code: 'ECONNRESET' }));
  }
}

describe(`KafkaSource on ${kafkaKind()}`, () => {
  const kafka = testKafka('source-test');

  async function topicWith(count: number): Promise<string> {
    const topic = uniqueName('src');
    await ensureTopics(kafka, [topic]);
    await produceAll(kafka, topic, Array.from({ length: count }, (_, i) => ({ key: `u${i}`, value: Buffer.from(`m${i}`) })));
    return topic;
  }

  const options = (topic: string): KafkaSourceOptions => ({
    kafka,
    groupId: uniqueName('src-group'),
    topics: [topic],
    fromBeginning: true,
    consumer: ConsumerConfig.parse({ sessionTimeoutMs: 6000, rebalanceTimeoutMs: 6000, heartbeatIntervalMs: 500 }),
  });

  it('a failing batch handler ends run with its error: the batch is not retried, the consumer not restarted, stop and commit stay safe', async () => {
    const topic = await topicWith(20);
    const source = new KafkaSource(options(topic));
    const failure = new Error('archive unreachable');
    let calls = 0;
    const run = settle(
      source.run(async () => {
        calls++;
        throw failure;
      }),
    );
    await waitFor(() => run.state() !== 'pending', 30_000, 'run to settle after the handler failed');
    expect(run.state()).toBe('rejected');
    expect(run.error()).toBe(failure);
    // Give kafkajs time to retry or restart, if it (wrongly) would.
    await new Promise((r) => setTimeout(r, 1500));
    expect(calls).toBe(1);
    // The shutdown path after a crash: nothing to pause, nothing to commit, disconnect is clean.
    await expect(source.stop()).resolves.toBeUndefined();
    await expect(source.commit([{ topic, partition: 0, offset: '5' }])).resolves.toBeUndefined();
    await expect(source.disconnect()).resolves.toBeUndefined();
  }, 60_000);

  it('a broker error kafkajs does not retry ends run with a KafkaError naming group and topic, not as a stop; stop afterwards does not pause, also in the instant kafkajs stops the consumer', async () => {
    const topic = await topicWith(20);
    const refusal = new BrokerRefusal();
    const refusing = new Kafka({ clientId: 'source-refused', brokers: testBrokers(), socketFactory: refusal.socketFactory, logLevel: logLevel.NOTHING });
    const opts = { ...options(topic), kafka: refusing };
    const source = new KafkaSource(opts);
    // kafkajs handles a crash by stopping the consumer (STOP, its group dropped), disconnecting and
    // only then reporting the crash (CRASH). A stop asked for in that gap (a shutdown signal) must
    // not pause the dropped group. Queued, so that it runs after the source's own STOP listener.
    const stopsInCrash: Array<ReturnType<typeof settle>> = [];
    const createConsumer = refusing.consumer.bind(refusing);
    refusing.consumer = (config: KafkaConsumerConfig) => {
      const consumer = createConsumer(config);
      consumer.on(consumer.events.STOP, () => queueMicrotask(() => stopsInCrash.push(settle(source.stop()))));
      return consumer;
    };
    let handled = 0;
    const run = settle(source.run(async (batch) => void (handled += batch.messages.length)));
    try {
      await waitFor(() => handled >= 20, 30_000, 'all 20 messages');
      // The group's ACL is revoked: the broker refuses the next heartbeat, an error kafkajs neither
      // retries nor restarts the consumer for.
      refusal.refuseNextHeartbeat(BrokerErrorCode.GROUP_AUTHORIZATION_FAILED);
      await waitFor(() => run.state() !== 'pending', 30_000, 'run to settle after the refused heartbeat');
      expect(refusal.refused).toBe(1);
      expect(run.state()).toBe('rejected');
      const error = run.error() as KafkaError;
      expect(error).toBeInstanceOf(KafkaError);
      expect(error.retriable).toBe(false);
      expect(error.message).toBe(
        `kafka consumer of group ${opts.groupId} on ${topic} crashed and kafkajs does not restart it (GROUP_AUTHORIZATION_FAILED: Not authorized to access group: Group authorization failed)`,
      );
      expect(error.context).toMatchObject({ groupId: opts.groupId, topic, type: 'GROUP_AUTHORIZATION_FAILED' });
      expect(stopsInCrash).toHaveLength(1);
      expect(stopsInCrash[0]?.state()).toBe('resolved');
      // Give kafkajs time to restart the consumer, if it (wrongly) would.
      await new Promise((r) => setTimeout(r, 1500));
      expect(source.restarts).toBe(0);
      // The shutdown path after the crash (twice, as a signal and the idle exit may both ask).
      await expect(source.stop()).resolves.toBeUndefined();
      await expect(source.stop()).resolves.toBeUndefined();
      await expect(source.commit([{ topic, partition: 0, offset: '5' }])).resolves.toBeUndefined();
    } finally {
      await source.stop();
      await source.disconnect();
    }
    // Disconnecting after the crash does not turn it into a stop. (An unhandled rejection anywhere in
    // this test fails it: jest 30 attributes those to the running test.)
    expect(run.state()).toBe('rejected');
  }, 60_000);

  it('run resolves only after stop and disconnect, and the committed offsets are where the next member starts', async () => {
    const topic = await topicWith(30);
    const opts = options(topic);
    const source = new KafkaSource(opts);
    const seen: RawBatch[] = [];
    const run = settle(source.run(async (batch) => void seen.push(batch)));
    const count = (): number => seen.reduce((n, b) => n + b.messages.length, 0);
    await waitFor(() => count() >= 30, 30_000, 'all 30 messages');
    const next = new Map(seen.map((b) => [b.partition, String(Number(b.messages.at(-1)!.offset) + 1)]));
    await source.stop();
    await source.commit([...next].map(([partition, offset]) => ({ topic, partition, offset })));
    expect(run.state()).toBe('pending');
    await source.disconnect();
    await waitFor(() => run.state() !== 'pending', 10_000, 'run to settle after disconnect');
    expect(run.state()).toBe('resolved');

    // A second member of the same group starts after the commit: nothing is redelivered.
    await produceAll(kafka, topic, [{ key: 'u0', value: Buffer.from('late') }]);
    const second = new KafkaSource(opts);
    const again: string[] = [];
    const run2 = settle(second.run(async (batch) => void again.push(...batch.messages.map((m) => String(m.value)))));
    await waitFor(() => again.length >= 1, 30_000, 'the message produced after the commit');
    await new Promise((r) => setTimeout(r, 500));
    await second.stop();
    await second.disconnect();
    await waitFor(() => run2.state() !== 'pending', 10_000, 'the second run to settle');
    expect(again).toEqual(['late']);
  }, 90_000);

  it('a broker outage longer than the retries crashes the consumer, kafkajs restarts it, and it resumes from the last commit', async () => {
    const topic = uniqueName('src-outage');
    await ensureTopics(kafka, [topic]);
    const first = Array.from({ length: 40 }, (_, i) => ({ key: `u${i}`, value: Buffer.from(`a${i}`) }));
    await produceAll(kafka, topic, first);
    const network = new FlakyNetwork();
    const flaky = new Kafka({
      clientId: 'source-outage',
      brokers: testBrokers(),
      socketFactory: network.socketFactory,
      retry: { retries: 1, initialRetryTime: 100 },
      logLevel: logLevel.NOTHING,
    });
    const source = new KafkaSource({
      ...options(topic),
      kafka: flaky,
      consumer: ConsumerConfig.parse({ sessionTimeoutMs: 6000, rebalanceTimeoutMs: 6000, heartbeatIntervalMs: 500, retries: 1, retryInitialMs: 100 }),
    });
    const seen: string[] = [];
    const last = new Map<number, string>();
    const run = settle(
      source.run(async (batch) => {
        for (const m of batch.messages) seen.push(String(m.value));
        last.set(batch.partition, batch.messages.at(-1)!.offset);
      }),
    );
    try {
      await waitFor(() => seen.length >= first.length, 30_000, 'the first 40 messages');
      const done = [...last].map(([partition, offset]) => ({ topic, partition, offset: String(Number(offset) + 1) }));
      await source.commit(done);

      network.cut(3000);
      await waitFor(() => source.restarts > 0, 20_000, 'the consumer to crash and be restarted');
      // Out of its group: a commit is skipped (the effects are durable; the replay is recognised), not thrown.
      // (The same offsets again, in case the consumer has rejoined already.)
      await expect(source.commit(done)).resolves.toBeUndefined();
      expect(run.state()).toBe('pending');

      const second = Array.from({ length: 20 }, (_, i) => ({ key: `v${i}`, value: Buffer.from(`b${i}`) }));
      await produceAll(kafka, topic, second);
      await waitFor(() => seen.length >= first.length + second.length, 60_000, 'the messages produced during the outage');
      await new Promise((r) => setTimeout(r, 500));
      // Resumed from the commit made before the outage: nothing before it is redelivered, nothing after it is lost.
      expect(seen.slice(first.length).sort()).toEqual(second.map((m) => String(m.value)).sort());
      expect(network.refused).toBeGreaterThan(0);
      expect(run.state()).toBe('pending');
    } finally {
      // Always leave the group, also when an expectation failed (kafkajs would restart the consumer for ever).
      await source.stop();
      await source.disconnect();
    }
    await waitFor(() => run.state() !== 'pending', 10_000, 'run to settle after disconnect');
    expect(run.state()).toBe('resolved');
  }, 90_000);

  it('an ingest runtime whose batch fails ends: done rejects with the error and stopping afterwards is clean', async () => {
    const now = Date.now();
    const topic = uniqueName('src-rt');
    await ensureTopics(kafka, [topic]);
    const events = Array.from({ length: 20 }, (_, i) => ({ eventId: `e${i}`, userId: `u${i % 3}`, itemId: `i${i}`, type: 'view', ts: now - 1000 + i }));
    await produceAll(kafka, topic, events.map((e) => ({ key: e.userId, value: Buffer.from(JSON.stringify(e)) })));
    const config = StreamrecConfig.parse({
      kafka: { brokers: testBrokers() },
      ingest: {
        groupId: uniqueName('src-rt-group'),
        topics: { interactions: topic, catalog: uniqueName('src-rt-cat'), changelog: uniqueName('src-rt-log') },
        archive: false,
        historyStore: 'memory',
        consumer: { sessionTimeoutMs: 6000, rebalanceTimeoutMs: 6000, heartbeatIntervalMs: 500 },
      },
    });
    const runtime = await startIngest({ config });
    const failure = new Error('injected: the archive is gone');
    runtime.processor.process = async () => {
      throw failure;
    };
    const done = settle(runtime.done);
    await waitFor(() => done.state() !== 'pending', 30_000, 'the runtime to end after the failed batch');
    expect(done.state()).toBe('rejected');
    expect(done.error()).toBe(failure);
    await expect(runtime.stop()).resolves.toBeUndefined();
  }, 60_000);

  it('reports its fetches, its assignment and each partition\'s lag after every batch: what was handled plus the lag is the partition\'s end', async () => {
    const topic = uniqueName('src-lag');
    await ensureTopics(kafka, [topic]);
    // Three produce requests, so that a partition holds several message sets.
    for (let round = 0; round < 3; round++) {
      await produceAll(kafka, topic, Array.from({ length: 40 }, (_, i) => ({ key: `u${i}`, value: Buffer.from(`r${round}m${i}`) })));
    }
    const instrumentation = new Instrumentation();
    const fetches: Array<InstrumentationEvents['ingest.fetch_end']> = [];
    const assignments: Array<InstrumentationEvents['ingest.assignment']> = [];
    const handled = new Map<number, number>();
    /** Per lag report: messages of the partition handled so far, and the lag reported. */
    const reports: Array<{ topic: string; partition: number; handled: number; lag: number }> = [];
    instrumentation.on('ingest.fetch_end', (f) => fetches.push(f));
    instrumentation.on('ingest.assignment', (a) => assignments.push(a));
    instrumentation.on('ingest.partition_lag', (l) => reports.push({ ...l, handled: handled.get(l.partition) ?? 0 }));
    const source = new KafkaSource({ ...options(topic), instrumentation });
    const run = settle(source.run(async (batch) => void handled.set(batch.partition, (handled.get(batch.partition) ?? 0) + batch.messages.length)));
    await waitFor(() => [...handled.values()].reduce((a, b) => a + b, 0) >= 120, 30_000, 'all 120 messages');
    await source.stop();
    await source.disconnect();
    await waitFor(() => run.state() !== 'pending', 10_000, 'run to settle');

    expect(assignments).toHaveLength(1);
    expect(assignments[0]?.topic).toBe(topic);
    expect(assignments[0]?.revoked).toEqual([]);
    expect(new Set(assignments[0]?.assigned)).toEqual(new Set(handled.keys()));
    expect(fetches.length).toBeGreaterThanOrEqual(1);
    for (const f of fetches) {
      expect(Number.isInteger(f.broker)).toBe(true);
      expect(f.durationMs).toBeGreaterThanOrEqual(0);
    }
    expect(reports.length).toBeGreaterThanOrEqual(handled.size);
    for (const r of reports) {
      expect(r.topic).toBe(topic);
      expect(r.handled + r.lag).toBe(handled.get(r.partition));
    }
    for (const partition of handled.keys()) expect(reports.filter((r) => r.partition === partition).at(-1)?.lag).toBe(0);
  }, 60_000);

  it('no partition starves behind one that always has data when each fetch can bring one batch: all of it arrives, in order, while the busy one goes on', async () => {
    // A broker answers a fetch over its byte limits with the first non-empty partition's first
    // batch alone, however large (KIP-74; maxBytes 1 makes every fetch such a fetch here, as a batch
    // larger than maxBytesPerPartition does on Apache Kafka). kafkajs shuffles the partitions of
    // each fetch request, so a partition behind one that always has data still comes first in
    // some fetches: its batch, oversized or not, is delivered instead of waiting for the busy one.
    const topic = uniqueName('src-starve');
    await ensureTopics(kafka, [topic]);
    const admin = kafka.admin();
    await admin.connect();
    const partitions = (await admin.fetchTopicMetadata({ topics: [topic] })).topics[0]!.partitions.map((p) => p.partitionId).sort((a, b) => a - b);
    await admin.disconnect();
    expect(partitions.length).toBeGreaterThanOrEqual(2);
    const busy = partitions[0]!;
    const quiet = partitions.at(-1)!;
    const producer = kafka.producer({ allowAutoTopicCreation: true });
    await producer.connect();
    // The busy partition gets a message every 10 ms and each batch takes 40 ms to handle, so it
    // has data at every fetch (one message per batch: each send is one record batch).
    let producing = true;
    let sent = 0;
    const feeding = (async () => {
      while (producing) {
        await producer.send({ topic, messages: [{ partition: busy, key: `b${sent}`, value: Buffer.from(`b${sent}`) }] });
        sent++;
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    const handled = new Map<number, number[]>();
    const count = (p: number) => handled.get(p)?.length ?? 0;
    let quietSent: Promise<unknown> | undefined;
    const consumer = ConsumerConfig.parse({ sessionTimeoutMs: 6000, rebalanceTimeoutMs: 6000, heartbeatIntervalMs: 500, maxBytes: 1, maxWaitMs: 50 });
    const source = new KafkaSource({ ...options(topic), consumer });
    const run = settle(
      source.run(async (batch) => {
        const offsets = handled.get(batch.partition) ?? [];
        for (const m of batch.messages) offsets.push(Number(m.offset));
        handled.set(batch.partition, offsets);
        // Three batches for the quiet partition arrive once the busy one is being consumed.
        if (batch.partition === busy && !quietSent) {
          quietSent = (async () => {
            for (let i = 0; i < 3; i++) await producer.send({ topic, messages: Array.from({ length: 5 }, (_, j) => ({ partition: quiet, key: `q${i}.${j}`, value: Buffer.from(`q${i}.${j}`) })) });
          })();
        }
        await new Promise((r) => setTimeout(r, 40));
      }),
    );
    try {
      await waitFor(() => count(quiet) >= 15, 30_000, 'the quiet partition\'s 15 messages');
      await quietSent;
    } finally {
      producing = false;
      await feeding;
      await source.stop();
      await source.disconnect();
      await producer.disconnect();
    }
    await waitFor(() => run.state() !== 'pending', 10_000, 'run to settle');
    expect(run.state()).toBe('resolved');
    expect(handled.get(quiet)).toEqual([...Array(15).keys()]); // all of it, in order, once
    // The busy partition was consumed in order without gaps, and had data all along.
    const busyOffsets = handled.get(busy)!;
    expect(busyOffsets).toEqual(busyOffsets.map((_, i) => busyOffsets[0]! + i));
    expect(busyOffsets[0]).toBe(0);
    expect(sent).toBeGreaterThan(busyOffsets.length + 10); // still behind when it stopped: never drained
  }, 60_000);

  it('takes its fetch limits from the config: with maxBytes 1 every fetch brings one partition\'s batch', async () => {
    const topic = uniqueName('src-maxbytes');
    await ensureTopics(kafka, [topic]);
    await produceAll(kafka, topic, Array.from({ length: 40 }, (_, i) => ({ key: `u${i}`, value: Buffer.from(`m${i}`) })));
    const instrumentation = new Instrumentation();
    let fetch = 0;
    instrumentation.on('ingest.fetch_end', () => fetch++);
    /** The fetch (by number) that brought each batch. */
    const broughtBy: number[] = [];
    let count = 0;
    const consumer = ConsumerConfig.parse({ sessionTimeoutMs: 6000, rebalanceTimeoutMs: 6000, heartbeatIntervalMs: 500, maxBytes: 1, maxWaitMs: 50 });
    const source = new KafkaSource({ ...options(topic), consumer, instrumentation });
    const run = settle(
      source.run(async (batch) => {
        broughtBy.push(fetch);
        count += batch.messages.length;
      }),
    );
    await waitFor(() => count >= 40, 30_000, 'all 40 messages');
    await source.stop();
    await source.disconnect();
    await waitFor(() => run.state() !== 'pending', 10_000, 'run to settle');
    expect(broughtBy.length).toBeGreaterThanOrEqual(2); // the messages are spread over the topic's partitions
    expect(new Set(broughtBy).size).toBe(broughtBy.length);
  }, 60_000);
});
