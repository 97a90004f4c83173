import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Kafka, KafkaMessage } from 'kafkajs';
import { openClickHouse } from '../infra/clickhouse';
import { readTopicToEnd } from '../infra/history';
import { DLQ_HEADERS, sendChunked } from '../infra/kafka';
import { startIngest } from '../ingest';
import { Random } from '../random';
import { ClickHouseConfig, StreamrecConfig } from '../schemas/config';
import { exited, spawnCli } from './cli';
import { waitFor } from './ingestHarness';
import { isMockKafka, kafkaKind, testBrokers, testKafka, uniqueName } from './kafka';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Produced {
  readonly key: string;
  readonly value: string;
  /** The dead-letter code it must get; undefined for a good event. */
  readonly expected?: string;
}

/** Good interactions with every poison pill the issue found (each once per call) among them. */
function interactionStream(from: number, count: number, now: number): Produced[] {
  const good = (i: number): Produced => ({ key: `u${i % 40}`, value: JSON.stringify({ eventId: `e${i}`, userId: `u${i % 40}`, itemId: `i${i % 90}`, type: 'view', ts: now - 3_600_000 + i }) });
  const raw = (i: number, body: string, expected: string): Produced => ({ key: `u${i % 40}`, value: body, expected });
  const out: Produced[] = [];
  for (let i = from; i < from + count; i++) {
    out.push(good(i));
    if (i % 50 !== 7) continue;
    const u = `u${i % 40}`;
    out.push(
      raw(i, `{"eventId":"p${i}a","userId":"${u}","itemId":"x","type":"view","ts":1e20}`, 'ts_out_of_range'),
      raw(i, `{"eventId":"p${i}b","userId":"${u}","itemId":"x\\ud800","type":"view","ts":${now}}`, 'schema'),
      raw(i, `{"eventId":"p${i}c","userId":"${u}","itemId":"x","type":"view","ts":"2018-02-30T00:00:00Z"}`, 'schema'),
      raw(i, `{"eventId":"p${i}d","userId":"${u}","userId":"${u}","itemId":"x","type":"view","ts":${now}}`, 'schema'),
      raw(i, `{"eventId":"p${i}e","userId":"${u}","itemId":"x","type":"view","ts":${now},"context":{"__proto__":{"a":1}}}`, 'schema'),
      { key: 'someone-else', value: JSON.stringify({ eventId: `p${i}f`, userId: u, itemId: 'x', type: 'view', ts: now }), expected: 'key_mismatch' },
      { key: 'a\u202eb', value: `{"eventId":"p${i}g","userId":"a\\u202eb","itemId":"x","type":"view","ts":${now}}`, expected: 'schema' },
    );
  }
  return out;
}

function catalogStream(from: number, count: number, now: number): Produced[] {
  const out: Produced[] = [];
  for (let i = from; i < from + count; i++) {
    out.push({ key: `item-${i}`, value: JSON.stringify({ itemId: `item-${i}`, ts: now - 1000, title: `Item ${i}` }) });
    if (i % 20 === 3) {
      out.push({ key: `bad-${i}`, value: `{"itemId":"bad-${i}","ts":1e20,"title":"t"}`, expected: 'ts_out_of_range' });
      out.push({ key: `bad2-${i}`, value: `{"itemId":"bad2-${i}","ts":${now},"title":"\\ud800"}`, expected: 'schema' });
    }
  }
  return out;
}

async function produce(kafka: Kafka, topic: string, messages: readonly Produced[]): Promise<void> {
  const producer = kafka.producer({ allowAutoTopicCreation: true });
  await producer.connect();
  try {
    await sendChunked(producer, topic, messages.map((m) => ({ key: m.key, value: m.value })));
  } finally {
    await producer.disconnect();
  }
}

async function topicEnds(kafka: Kafka, topic: string): Promise<Map<number, number>> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    return new Map((await admin.fetchTopicOffsets(topic)).map((o) => [o.partition, Number(o.high)]));
  } finally {
    await admin.disconnect();
  }
}

describe(`ingest survives poison pills on ${kafkaKind()}`, () => {
  it('a process SIGKILLed among poison pills restarts and goes on past them: every message archived or dead-lettered once, commits at the end', async () => {
    const kafka = testKafka();
    const group = uniqueName('poison-group');
    const topics = { interactions: uniqueName('poison-in'), catalog: uniqueName('poison-cat'), changelog: uniqueName('poison-log') };
    const chDir = mkdtempSync(path.join(tmpdir(), 'streamrec-poison-'));
    const now = Date.now();
    const first = interactionStream(0, 1500, now);
    const second = interactionStream(1500, 1500, now);
    const items = catalogStream(0, 200, now);
    await produce(kafka, topics.interactions, first);
    await produce(kafka, topics.catalog, items);

    const args = ['ingest', '--source', `kafka://${testBrokers().join(',')}/${topics.interactions}`, '--catalog-topic', topics.catalog, '--group', group, '--clickhouse', `chdb:${chDir}`];
    const env = {
      STREAMREC__INGEST__TOPICS__CHANGELOG: topics.changelog,
      STREAMREC__INGEST__FLUSH__MAX_EVENTS: '200',
      STREAMREC__INGEST__FLUSH__INTERVAL_MS: '100',
      STREAMREC__INGEST__CONSUMER__SESSION_TIMEOUT_MS: '6000',
      STREAMREC__INGEST__CONSUMER__REBALANCE_TIMEOUT_MS: '6000',
      STREAMREC__INGEST__CONSUMER__HEARTBEAT_INTERVAL_MS: '500',
      STREAMREC__INGEST__CONSUMER__MAX_BYTES_PER_PARTITION: '8192',
      STREAMREC__INGEST__CONSUMER__LAG_CHECK_MS: '500',
    };
    // The first process is killed at a random moment once it is applying events (the changelog grows).
    const child = spawnCli(args, env);
    await waitFor(async () => {
      if (child.exitCode !== null) throw new Error(`ingest exited early (${child.exitCode}):\n${child.output()}`);
      return [...(await topicEnds(kafka, topics.changelog).catch(() => new Map<number, number>())).values()].some((n) => n > 0);
    }, 60_000, 'the first process to write histories');
    await sleep(new Random(9).int(400));
    child.kill('SIGKILL');
    await exited(child);
    await produce(kafka, topics.interactions, second);

    const last = spawnCli([...args, '--idle-exit-ms', '4000'], env);
    const timer = setTimeout(() => last.kill('SIGKILL'), 90_000);
    const result = await exited(last);
    clearTimeout(timer);
    expect({ code: result.code, output: result.code === 0 ? '' : last.output() }).toEqual({ code: 0, output: '' });

    const all = [...first, ...second];
    const pills = all.filter((m) => m.expected !== undefined);
    const badItems = items.filter((m) => m.expected !== undefined);
    expect(pills.length).toBe(2 * 30 * 7);
    const ch = await openClickHouse(ClickHouseConfig.parse({ url: `chdb:${chDir}` }));
    try {
      const [archived] = await ch.query<{ n: string; distinct: string }>(`SELECT count() AS n, uniqExact(event_id) AS distinct FROM ${ch.table('interactions')} FINAL`);
      expect(Number(archived?.n)).toBe(all.length - pills.length);
      expect(Number(archived?.distinct)).toBe(all.length - pills.length);
      const [catalog] = await ch.query<{ n: string }>(`SELECT count() AS n FROM ${ch.table('items')} FINAL`);
      expect(Number(catalog?.n)).toBe(items.length - badItems.length);
      // Each pill once (FINAL collapses a dead letter written again after the kill), with its code.
      const dead = await ch.query<{ topic: string; code: string; payload_base64: string }>(`SELECT topic, code, payload_base64 FROM ${ch.table('dead_letters')} FINAL`);
      const byPayload = (rows: Array<{ code: string; payload: string }>) => rows.map((r) => `${r.code} ${r.payload}`).sort();
      expect(byPayload(dead.filter((d) => d.topic === topics.interactions).map((d) => ({ code: d.code, payload: Buffer.from(d.payload_base64, 'base64').toString() })))).toEqual(
        byPayload(pills.map((m) => ({ code: m.expected as string, payload: m.value }))),
      );
      expect(byPayload(dead.filter((d) => d.topic === topics.catalog).map((d) => ({ code: d.code, payload: Buffer.from(d.payload_base64, 'base64').toString() })))).toEqual(
        byPayload(badItems.map((m) => ({ code: m.expected as string, payload: m.value }))),
      );
    } finally {
      await ch.close();
    }
    // The group's commits pass every message of both topics.
    const admin = kafka.admin();
    await admin.connect();
    try {
      for (const topic of [topics.interactions, topics.catalog]) {
        const ends = await topicEnds(kafka, topic);
        const [committed] = await admin.fetchOffsets({ groupId: group, topics: [topic] });
        for (const p of committed?.partitions ?? []) expect({ topic, partition: p.partition, offset: Number(p.offset) }).toEqual({ topic, partition: p.partition, offset: ends.get(p.partition) ?? 0 });
      }
    } finally {
      await admin.disconnect();
    }
  }, 180_000);

  it('streamrec ingest exits 3 (not 0) when the broker deleted messages of its partitions before it read them, naming how many', async () => {
    const kafka = testKafka();
    const topics = { interactions: uniqueName('gap-in'), catalog: uniqueName('gap-cat'), changelog: uniqueName('gap-log') };
    const group = uniqueName('gap-group');
    const now = Date.now();
    const event = (i: number) => ({ key: 'u1', value: JSON.stringify({ eventId: `g${i}`, userId: 'u1', itemId: 'i1', type: 'view', ts: now - 1000 + i }), partition: 0 });
    const producer = kafka.producer({ allowAutoTopicCreation: true });
    await producer.connect();
    try {
      await sendChunked(producer, topics.interactions, Array.from({ length: 10 }, (_, i) => event(i)));
      const args = ['ingest', '--source', `kafka://${testBrokers().join(',')}/${topics.interactions}`, '--catalog-topic', topics.catalog, '--group', group, '--history-store', 'memory', '--no-archive', '--idle-exit-ms', '3000'];
      const env = { STREAMREC__INGEST__TOPICS__CHANGELOG: topics.changelog, STREAMREC__INGEST__CONSUMER__LAG_CHECK_MS: '500' };
      const first = spawnCli(args, env);
      expect((await exited(first)).code).toBe(0); // read and committed the 10
      // Six messages the group never reads: deleted by the broker (the mock deletes a partition's
      // whole log past 5 MB; a real broker on request).
      if (isMockKafka()) {
        await sendChunked(producer, topics.interactions, Array.from({ length: 5 }, (_, i) => event(10 + i)));
        await producer.send({ topic: topics.interactions, messages: [{ key: 'u1', value: Buffer.alloc(5 * 1024 * 1024 + 1, 0x20), partition: 0 }] });
      } else {
        await sendChunked(producer, topics.interactions, Array.from({ length: 6 }, (_, i) => event(10 + i)));
        const admin = kafka.admin();
        await admin.connect();
        await admin.deleteTopicRecords({ topic: topics.interactions, partitions: [{ partition: 0, offset: '16' }] });
        await admin.disconnect();
      }
      await sendChunked(producer, topics.interactions, Array.from({ length: 3 }, (_, i) => event(20 + i)));
      // What the broker holds now (the mock may delete a few more past the big message).
      const admin = kafka.admin();
      await admin.connect();
      const p0 = (await admin.fetchTopicOffsets(topics.interactions)).find((o) => o.partition === 0);
      await admin.disconnect();
      const [low, high] = [Number(p0?.low), Number(p0?.high)];
      expect(low).toBeGreaterThanOrEqual(16);
      const second = spawnCli(args, env);
      const result = await exited(second);
      expect({ code: result.code, output: second.output() }).toMatchObject({ code: 3, output: expect.stringContaining(`error: ${low - 10} messages were deleted by the broker`) });
      expect(second.output()).toContain(`"lostToRetention":${low - 10}`);
      expect(second.output()).toContain(`"messages":${high - low},`); // what was left after the gap was read
    } finally {
      await producer.disconnect();
    }
  }, 90_000);

  it('a message over the fetch limit is fetched whole and dead-lettered too_large by offset; messages the broker deleted before they were read are reported, and lag counts what remains', async () => {
    const kafka = testKafka();
    const topics = { interactions: uniqueName('big-in'), catalog: uniqueName('big-cat'), changelog: uniqueName('big-log'), deadLetterSuffix: '.dlq' };
    const now = Date.now();
    const event = (i: number) => ({ key: `u${i % 7}`, value: JSON.stringify({ eventId: `e${i}`, userId: `u${i % 7}`, itemId: 'i', type: 'view', ts: now - 1000 }), partition: 0 });
    const producer = kafka.producer({ allowAutoTopicCreation: true });
    await producer.connect();
    await sendChunked(producer, topics.interactions, Array.from({ length: 100 }, (_, i) => event(i)));
    // 2 MB: over the consumer's 256 KB fetch limit per partition and the 1 MB message limit.
    await producer.send({ topic: topics.interactions, messages: [{ key: 'u0', value: Buffer.alloc(2 * 1024 * 1024, 0x20), partition: 0 }] });
    await sendChunked(producer, topics.interactions, Array.from({ length: 300 }, (_, i) => event(100 + i)));

    const config = StreamrecConfig.parse({
      kafka: { brokers: testBrokers() },
      clickhouse: { url: `chdb:${mkdtempSync(path.join(tmpdir(), 'streamrec-big-'))}` },
      ingest: { groupId: uniqueName('big-group'), topics, historyStore: 'memory', consumer: { maxBytesPerPartition: 256 * 1024, lagCheckMs: 300 } },
    });
    const runtime = await startIngest({ config });
    const gaps: Array<{ fromOffset: number; toOffset: number; messages: number }> = [];
    runtime.instrumentation.on('ingest.retention_gap', (g) => void gaps.push({ fromOffset: g.fromOffset, toOffset: g.toOffset, messages: g.messages }));
    try {
      await waitFor(() => runtime.processor.totals.messages === 401, 60_000, 'the 401 messages');
      expect(runtime.processor.totals).toMatchObject({ accepted: 400, deadLetters: 1, deadLetterCodes: { too_large: 1 } });

      // Messages deleted by the broker before ingest read them: the mock cluster keeps at most
      // 5 MB per partition and deletes the whole log past that; a real broker deletes on request.
      const deleted = 150;
      if (isMockKafka()) {
        // A message that alone passes the mock's 5 MB: the log (it, and 149 behind it) is deleted.
        await producer.send({ topic: topics.interactions, messages: [{ key: 'u0', value: Buffer.alloc(5 * 1024 * 1024 + 1, 0x20), partition: 0 }] });
        await sendChunked(producer, topics.interactions, Array.from({ length: deleted - 1 }, (_, i) => event(1000 + i)));
        const admin = kafka.admin();
        await admin.connect();
        const p0 = (await admin.fetchTopicOffsets(topics.interactions)).find((o) => o.partition === 0);
        await admin.disconnect();
        expect(Number(p0?.low)).toBe(401 + deleted); // the broker did delete them
      } else {
        const admin = kafka.admin();
        await admin.connect();
        await sendChunked(producer, topics.interactions, Array.from({ length: deleted }, (_, i) => event(1000 + i)));
        await admin.deleteTopicRecords({ topic: topics.interactions, partitions: [{ partition: 0, offset: String(401 + deleted) }] });
        await admin.disconnect();
      }
      await waitFor(() => gaps.length > 0, 30_000, 'the gap to be reported');
      expect(gaps).toEqual([{ fromOffset: 401, toOffset: 400 + deleted, messages: deleted }]);
      expect(runtime.processor.totals.lostToRetention).toBe(deleted);

      // Ingest goes on after the gap, and lag counts messages produced while it waits.
      await sendChunked(producer, topics.interactions, Array.from({ length: 20 }, (_, i) => event(2000 + i)));
      await waitFor(() => runtime.processor.totals.accepted === 420, 30_000, 'the 20 messages after the gap');
      await waitFor(() => runtime.processor.consumerLag() === 0, 10_000, 'lag 0 once all is read');
    } finally {
      await producer.disconnect();
      await runtime.stop();
      await runtime.done;
    }
    // The too_large dead letter names its offset in the dead-letter topic's headers, with the bytes.
    const dlq: KafkaMessage[] = [];
    await readTopicToEnd(kafka, `${topics.interactions}.dlq`, (m) => void dlq.push(m));
    expect(dlq.map((m) => ({ code: m.headers?.[DLQ_HEADERS.code]?.toString(), offset: m.headers?.[DLQ_HEADERS.offset]?.toString(), bytes: m.value?.length }))).toEqual([
      { code: 'too_large', offset: '100', bytes: 2 * 1024 * 1024 },
    ]);
  }, 120_000);
});
