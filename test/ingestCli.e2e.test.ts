import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openClickHouse } from '../infra/clickhouse';
import { ChangelogHistoryStore, ensureTopics } from '../infra/history';
import type { ProgressSummary } from '../ingest/progress';
import { syntheticInteractions } from '../ingest/synthetic';
import { ClickHouseConfig } from '../schemas/config';
import { DEFAULT_LIMITS } from '../schemas/limits';
import { exited, runCli, spawnCli } from './cli';
import { produceAll, waitFor } from './ingestHarness';
import { kafkaKind, testBrokers, testKafka, uniqueName } from './kafka';

describe(`streamrec ingest on ${kafkaKind()}`, () => {
  it('logs its progress (rates, dead letters, consumer lag) while it runs, and its totals when it stops', async () => {
    const kafka = testKafka();
    const topic = uniqueName('cli-in');
    await ensureTopics(kafka, [topic]);
    const now = Date.now();
    const messages = [
      ...syntheticInteractions({ count: 3000, users: 100, items: 500, badRate: 0.05, seed: 31, startTs: now - 86_400_000, now, toleranceMs: 600_000, maxMessageBytes: DEFAULT_LIMITS.maxMessageBytes }),
    ];
    await produceAll(kafka, topic, messages);
    const result = await runCli(
      ['ingest', '--source', `kafka://${testBrokers().join(',')}/${topic}`, '--catalog-topic', uniqueName('cli-cat'), '--group', uniqueName('cli-group'), '--history-store', 'memory', '--no-archive', '--idle-exit-ms', '3000', '--progress-ms', '250'],
      { STREAMREC_LOG_LEVEL: 'info' },
      60_000,
    );
    expect({ code: result.code, output: result.code === 0 ? '' : result.output }).toEqual({ code: 0, output: '' });

    const lines = result.output
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const summaries = lines.filter((l) => l.msg === 'ingest progress') as unknown as ProgressSummary[];
    expect(summaries.length).toBeGreaterThanOrEqual(2);
    // Consuming, then idle until it stops: the rates were up, everything was read, nothing is behind.
    expect(summaries.some((s) => s.messagesPerS > 0)).toBe(true);
    const last = summaries.at(-1) as ProgressSummary;
    expect(last.totalMessages).toBe(messages.length);
    expect(last.lag).toBe(0);
    expect(last.messagesPerS).toBe(0);
    const bad = messages.filter((m) => m.expected !== undefined).length;
    const deadLetters = summaries.reduce((n, s) => n + s.deadLetters, 0);
    expect(deadLetters).toBeGreaterThan(0);
    expect(deadLetters).toBeLessThanOrEqual(bad);
    const totals = lines.find((l) => l.totals !== undefined) as { totals: { messages: number; deadLetters: number }; users: number } | undefined;
    expect(totals?.totals.messages).toBe(messages.length);
    expect(totals?.totals.deadLetters).toBe(bad);
  }, 90_000);
});

describe(`streamrec ingest shutdown on ${kafkaKind()}`, () => {
  it('on SIGTERM finishes the batch in flight, makes it durable, commits exactly what it handled and exits 0', async () => {
    const kafka = testKafka();
    const topics = { interactions: uniqueName('term-in'), catalog: uniqueName('term-cat'), changelog: uniqueName('term-log') };
    const group = uniqueName('term-group');
    await ensureTopics(kafka, [topics.interactions], 4);
    const now = Date.now();
    const messages = [
      ...syntheticInteractions({ count: 40_000, users: 500, items: 2000, badRate: 0.02, seed: 37, startTs: now - 86_400_000, now, toleranceMs: 600_000, maxMessageBytes: DEFAULT_LIMITS.maxMessageBytes }),
    ];
    await produceAll(kafka, topics.interactions, messages);
    const chDir = mkdtempSync(path.join(tmpdir(), 'streamrec-term-'));
    const child = spawnCli(
      ['ingest', '--source', `kafka://${testBrokers().join(',')}/${topics.interactions}`, '--catalog-topic', topics.catalog, '--group', group, '--clickhouse', `chdb:${chDir}`, '--progress-ms', '100'],
      { STREAMREC_LOG_LEVEL: 'info', STREAMREC__INGEST__TOPICS__CHANGELOG: topics.changelog },
    );
    // Signalled as soon as it has handled messages, usually with more still to come.
    const handled = (): boolean =>
      child
        .output()
        .split('\n')
        .some((l) => l.includes('"ingest progress"') && /"totalMessages":[1-9]/.test(l));
    await waitFor(handled, 45_000, 'the first messages handled').catch((error: unknown) => {
      child.kill('SIGKILL');
      throw new Error(`${(error as Error).message}; output:\n${child.output().slice(-3000)}`);
    });
    child.kill('SIGTERM');
    // A graceful stop on a busy 2-core machine: the batch in flight, one flush, the commit.
    const killer = setTimeout(() => child.kill('SIGKILL'), 40_000);
    const result = await exited(child);
    clearTimeout(killer);
    expect({ code: result.code, signal: result.signal }).toEqual({ code: 0, signal: null });
    expect(child.output()).toContain('"signal":"SIGTERM"');
    const totalsLine = child
      .output()
      .split('\n')
      .find((l) => l.startsWith('{"totals"'));
    const { totals } = JSON.parse(totalsLine ?? 'null') as { totals: { messages: number; accepted: number } };
    expect(totals.messages).toBeGreaterThan(0);

    // Committed offsets cover exactly the messages handled: each partition's commit is the
    // offset after its last handled message, so a restart neither skips nor repeats any.
    const admin = kafka.admin();
    await admin.connect();
    const committed = await admin.fetchOffsets({ groupId: group, topics: [topics.interactions] }).finally(() => admin.disconnect());
    const committedCount = committed[0]?.partitions.reduce((n, p) => n + Math.max(0, Number(p.offset)), 0);
    expect(committedCount).toBe(totals.messages);

    // What was committed is durable: archived, and in the changelog a restarted process restores.
    const ch = await openClickHouse(ClickHouseConfig.parse({ url: `chdb:${chDir}` }));
    try {
      const [row] = await ch.query<{ n: string }>(`SELECT count() AS n FROM ${ch.table('interactions')}`);
      expect(Number(row?.n)).toBe(totals.accepted);
    } finally {
      await ch.close();
    }
    const restored = new ChangelogHistoryStore({ kafka, topic: topics.changelog });
    await restored.restore();
    const events = [...restored.values()].reduce((n, h) => n + h.eventIds.length, 0);
    expect(events).toBeGreaterThan(0);
    expect(events).toBeLessThanOrEqual(totals.accepted);
  }, 120_000);
});
