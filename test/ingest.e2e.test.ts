import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DLQ_HEADERS } from '../infra/kafka';
import { ChangelogHistoryStore, readTopicToEnd } from '../infra/history';
import { openClickHouse } from '../infra/clickhouse';
import { startIngest } from '../ingest';
import { syntheticInteractions } from '../ingest/synthetic';
import { StreamrecConfig } from '../schemas/config';
import { DEFAULT_LIMITS } from '../schemas/limits';
import { kafkaKind, testBrokers, testKafka, uniqueName } from './kafka';
import { deadLetterKeys, expectedHistories, historyEventIds, produceAll, waitFor } from './ingestHarness';

const TOLERANCE = 10 * 60_000;

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
    expect(new Set(bad.map((m) => m.expected)).size).toBe(7); // every code is exercised
    await produceAll(kafka, topics.interactions, messages);

    const chDir = mkdtempSync(path.join(tmpdir(), 'streamrec-e2e-'));
    const config = StreamrecConfig.parse({
      kafka: { brokers: testBrokers() },
      clickhouse: { url: `chdb:${chDir}` },
      ingest: { groupId: uniqueName('group'), topics, history: { outOfOrderToleranceMs: TOLERANCE } },
    });
    const runtime = await startIngest({ config });
    await waitFor(() => runtime.processor.totals.messages >= messages.length, 90_000, 'all messages consumed');
    await runtime.stop();
    await runtime.done;

    const totals = runtime.processor.totals;
    expect(totals.accepted).toBe(messages.length - bad.length);
    expect(totals.deadLetters).toBe(bad.length);
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
      const rows = await ch.query<{ code: string; payload_base64: string }>(`SELECT code, payload_base64 FROM ${ch.table('dead_letters')} FINAL`);
      const limit = 64 * 1024;
      const injected = bad.map((m) => ({ code: m.expected as string, payloadBase64: (m.value.length > limit ? m.value.subarray(0, limit) : m.value).toString('base64') }));
      expect(deadLetterKeys(rows.map((r) => ({ code: r.code, payloadBase64: r.payload_base64 })))).toEqual(deadLetterKeys(injected));

      // Archive: one row per good event, no duplicates.
      const [archive] = await ch.query<{ n: string; distinct: string }>(`SELECT count() AS n, uniqExact(event_id) AS distinct FROM ${ch.table('interactions')}`);
      expect(Number(archive?.n)).toBe(messages.length - bad.length);
      expect(Number(archive?.distinct)).toBe(messages.length - bad.length);
    } finally {
      await ch.close();
    }

    // Dead-letter topic: the original bytes with the reason in headers.
    const dlq: Array<{ code: string; payloadBase64: string }> = [];
    await readTopicToEnd(kafka, `${topics.interactions}.dlq`, (m) => {
      dlq.push({ code: String(m.headers?.[DLQ_HEADERS.code]), payloadBase64: (m.value ?? Buffer.alloc(0)).toString('base64') });
    });
    expect(deadLetterKeys(dlq)).toEqual(deadLetterKeys(bad.map((m) => ({ code: m.expected as string, payloadBase64: m.value.toString('base64') }))));
  });
});
