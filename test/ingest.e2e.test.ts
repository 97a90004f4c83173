import { mkdtempSync } from 'node:fs';
import type { KafkaMessage } from 'kafkajs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DLQ_HEADERS } from '../infra/kafka';
import { ChangelogHistoryStore, readTopicToEnd } from '../infra/history';
import { openClickHouse } from '../infra/clickhouse';
import { startIngest } from '../ingest';
import { FAULT_CODES, FAULT_KINDS, type FaultKind } from '../ingest/faults';
import { syntheticInteractions } from '../ingest/synthetic';
import { StreamrecConfig } from '../schemas/config';
import type { ItemEvent } from '../schemas/events';
import { DEFAULT_LIMITS } from '../schemas/limits';
import { kafkaKind, testBrokers, testKafka, uniqueName } from './kafka';
import { deadLetterKeys, expectedHistories, historyEventIds, produceAll, waitFor } from './ingestHarness';

const TOLERANCE = 10 * 60_000;

/**
 * Catalog messages (key = itemId): 300 items, each upserted twice (the second version newer),
 * plus bad ones with the dead-letter code each must get.
 */
function catalogMessages(now: number): Array<{ key: string; value: Buffer; expected?: string }> {
  const item = (i: number, version: number): ItemEvent => ({
    itemId: `item-${String(i).padStart(3, '0')}`,
    ts: now - 86_400_000 + version * 1000 + i,
    title: `Item ${i} v${version}`,
    categories: ['lab', `shelf ${i % 7}`],
    ...(i % 3 === 0 ? { description: 'A sealed glass vial.', features: ['10 ml', 'borosilicate'] } : {}),
  });
  const good = (e: ItemEvent): { key: string; value: Buffer } => ({ key: e.itemId, value: Buffer.from(JSON.stringify(e)) });
  const out: Array<{ key: string; value: Buffer; expected?: string }> = [];
  for (let i = 0; i < 300; i++) out.push(good(item(i, 1)));
  out.push({ key: 'item-x1', value: Buffer.from('{"itemId":"item-x1","ts":'), expected: 'invalid_json' });
  out.push({ key: 'item-x2', value: Buffer.from(JSON.stringify({ ts: now, title: 'no id' })), expected: 'schema' });
  out.push({ key: 'item-x3', value: Buffer.from(JSON.stringify({ itemId: 'item-x3', ts: now, categories: 'lab' })), expected: 'schema' });
  out.push({ key: 'item-x4', value: Buffer.from(JSON.stringify({ itemId: 'item-x4', ts: now, title: 't'.repeat(DEFAULT_LIMITS.maxTextLength + 1) })), expected: 'schema' });
  out.push({ key: 'item-x5', value: Buffer.from(JSON.stringify({ itemId: 'item-x5', ts: now + 7 * 86_400_000 })), expected: 'ts_out_of_range' });
  for (let i = 0; i < 300; i++) out.push(good(item(i, 2)));
  return out;
}

describe(`ingest end to end on ${kafkaKind()}`, () => {
  it('applies 20,000 events with ~5% bad ones: histories exact, every bad one dead-lettered with its code, archive complete', async () => {
    const kafka = testKafka();
    const topics = { interactions: uniqueName('interactions'), catalog: uniqueName('catalog'), changelog: uniqueName('changelog'), deadLetterSuffix: '.dlq' };
    const now = Date.now();
    const messages = [
      ...syntheticInteractions({ count: 20_000, users: 400, items: 3000, badRate: 0.05, seed: 11, startTs: now - 30 * 86_400_000, now, toleranceMs: TOLERANCE, maxMessageBytes: DEFAULT_LIMITS.maxMessageBytes }),
    ];
    const bad = messages.filter((m) => m.expected !== undefined);
    expect(bad.length).toBeGreaterThan(800);
    // Every kind of bad message the issue names is in the stream, each expecting its code.
    expect(new Set(bad.map((m) => m.fault))).toEqual(new Set(FAULT_KINDS));
    for (const m of bad) expect(m.expected).toBe(FAULT_CODES[m.fault as FaultKind]);
    expect(new Set(bad.map((m) => m.expected)).size).toBe(7); // every code is exercised
    await produceAll(kafka, topics.interactions, messages);
    // Catalog upserts on their own topic: 300 items, each updated once (the archive keeps the
    // newer version), and bad ones of the kinds a catalog feed has.
    const catalog = catalogMessages(now);
    await produceAll(kafka, topics.catalog, catalog);

    const chDir = mkdtempSync(path.join(tmpdir(), 'streamrec-e2e-'));
    const config = StreamrecConfig.parse({
      kafka: { brokers: testBrokers() },
      clickhouse: { url: `chdb:${chDir}` },
      ingest: { groupId: uniqueName('group'), topics, history: { outOfOrderToleranceMs: TOLERANCE } },
    });
    const runtime = await startIngest({ config });
    await waitFor(() => runtime.processor.totals.messages >= messages.length + catalog.length, 90_000, 'all messages consumed');
    await runtime.stop();
    await runtime.done;

    const totals = runtime.processor.totals;
    const badItems = catalog.filter((m) => m.expected !== undefined);
    expect(totals.accepted).toBe(messages.length - bad.length);
    expect(totals.items).toBe(catalog.length - badItems.length);
    expect(totals.deadLetters).toBe(bad.length + badItems.length);
    expect(totals.skipped).toBe(0);

    // Histories: exactly what the input implies, in the process and in the changelog.
    const expected = expectedHistories(messages, config.ingest.history.maxLength);
    expect(historyEventIds(runtime.store.values())).toEqual(expected);
    const restored = new ChangelogHistoryStore({ kafka, topic: topics.changelog });
    await restored.restore();
    expect(historyEventIds(restored.values())).toEqual(expected);

    // Dead letters in ClickHouse: the exact original bytes of every bad message, with its code.
    const ch = await openClickHouse(config.clickhouse);
    try {
      const rows = await ch.query<{ code: string; payload_base64: string }>(`SELECT code, payload_base64 FROM ${ch.table('dead_letters')} FINAL WHERE topic = {topic:String}`, { topic: topics.interactions });
      const limit = 64 * 1024;
      const injected = bad.map((m) => ({ code: m.expected as string, payloadBase64: (m.value.length > limit ? m.value.subarray(0, limit) : m.value).toString('base64') }));
      expect(deadLetterKeys(rows.map((r) => ({ code: r.code, payloadBase64: r.payload_base64 })))).toEqual(deadLetterKeys(injected));

      // Archive: one row per good event, no duplicates.
      const [archive] = await ch.query<{ n: string; distinct: string }>(`SELECT count() AS n, uniqExact(event_id) AS distinct FROM ${ch.table('interactions')}`);
      expect(Number(archive?.n)).toBe(messages.length - bad.length);
      expect(Number(archive?.distinct)).toBe(messages.length - bad.length);

      // Catalog: the latest version of every item, and its bad messages among the dead letters.
      const items = await ch.query<{ item_id: string; title: string; categories: string[] }>(`SELECT item_id, title, categories FROM ${ch.table('items')} FINAL ORDER BY item_id`);
      expect(items).toEqual(
        [...Array(300).keys()].map((i) => ({ item_id: `item-${String(i).padStart(3, '0')}`, title: `Item ${i} v2`, categories: ['lab', `shelf ${i % 7}`] })),
      );
      const catalogRows = await ch.query<{ code: string; payload_base64: string }>(
        `SELECT code, payload_base64 FROM ${ch.table('dead_letters')} FINAL WHERE topic = {topic:String}`,
        { topic: topics.catalog },
      );
      expect(deadLetterKeys(catalogRows.map((r) => ({ code: r.code, payloadBase64: r.payload_base64 })))).toEqual(
        deadLetterKeys(badItems.map((m) => ({ code: m.expected as string, payloadBase64: m.value.toString('base64') }))),
      );
    } finally {
      await ch.close();
    }

    // Dead-letter topic: the original key and bytes, with the reason and the origin in headers;
    // the origin is checked against what the source topic holds at that partition and offset.
    const source = new Map<string, { key: string | null; value: string }>();
    await readTopicToEnd(kafka, topics.interactions, (m, partition) => {
      source.set(`${partition}/${m.offset}`, { key: m.key?.toString() ?? null, value: (m.value ?? Buffer.alloc(0)).toString('base64') });
    });
    expect(source.size).toBe(messages.length);
    const dlqMessages: KafkaMessage[] = [];
    await readTopicToEnd(kafka, `${topics.interactions}.dlq`, (m) => void dlqMessages.push(m));
    const header = (m: KafkaMessage, name: string): string | undefined => m.headers?.[name]?.toString();
    const dlq = dlqMessages.map((m) => ({ code: String(header(m, DLQ_HEADERS.code)), payloadBase64: (m.value ?? Buffer.alloc(0)).toString('base64') }));
    dlqMessages.forEach((m, i) => {
      const { code, payloadBase64 } = dlq[i] as { code: string; payloadBase64: string };
      expect(header(m, DLQ_HEADERS.topic)).toBe(topics.interactions);
      const origin = source.get(`${header(m, DLQ_HEADERS.partition)}/${header(m, DLQ_HEADERS.offset)}`);
      expect({ key: m.key?.toString() ?? null, value: payloadBase64 }).toEqual(origin);
      expect(header(m, DLQ_HEADERS.message)?.length).toBeGreaterThan(10);
      const failedAt = Date.parse(header(m, DLQ_HEADERS.failedAt) ?? '');
      expect(failedAt).toBeGreaterThanOrEqual(now);
      expect(failedAt).toBeLessThanOrEqual(Date.now());
      // The failing field where there is one; bytes that are not JSON have none.
      const fieldPath = header(m, DLQ_HEADERS.path);
      if (code === 'unknown_type') expect(fieldPath).toBe('type');
      if (code === 'ts_out_of_range') expect(fieldPath).toBe('ts');
      if (code === 'invalid_json' || code === 'too_large') expect(fieldPath).toBeUndefined();
      if (fieldPath !== undefined) expect(fieldPath).toMatch(/^[a-zA-Z]+(\.[a-zA-Z0-9]+)*$/);
    });
    expect(deadLetterKeys(dlq)).toEqual(deadLetterKeys(bad.map((m) => ({ code: m.expected as string, payloadBase64: m.value.toString('base64') }))));
  });
});
