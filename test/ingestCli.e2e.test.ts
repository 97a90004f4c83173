import { ensureTopics } from '../infra/history';
import type { ProgressSummary } from '../ingest/progress';
import { syntheticInteractions } from '../ingest/synthetic';
import { DEFAULT_LIMITS } from '../schemas/limits';
import { exited, spawnCli } from './cli';
import { produceAll } from './ingestHarness';
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
    const child = spawnCli(
      ['ingest', '--source', `kafka://${testBrokers().join(',')}/${topic}`, '--catalog-topic', uniqueName('cli-cat'), '--group', uniqueName('cli-group'), '--history-store', 'memory', '--no-archive', '--idle-exit-ms', '3000', '--progress-ms', '250'],
      { STREAMREC_LOG_LEVEL: 'info' },
    );
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    const result = await exited(child);
    clearTimeout(timer);
    expect({ code: result.code, output: result.code === 0 ? '' : child.output() }).toEqual({ code: 0, output: '' });

    const lines = child
      .output()
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
