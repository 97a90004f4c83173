import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ChangelogHistoryStore } from '../infra/history';
import { KafkaSource, startIngest } from '../ingest';
import { syntheticInteractions } from '../ingest/synthetic';
import { StreamrecConfig } from '../schemas/config';
import { DEFAULT_LIMITS } from '../schemas/limits';
import { expectedHistories, historyEventIds, produceAll, waitFor } from './ingestHarness';
import { kafkaKind, testBrokers, testKafka, uniqueName } from './kafka';

const TOLERANCE = 10 * 60_000;

describe(`two ingest processes in one consumer group on ${kafkaKind()}`, () => {
  it('split the partitions after a rebalance; the newcomer restores its users from the changelog; nothing is lost or doubled', async () => {
    const kafka = testKafka();
    const topics = { interactions: uniqueName('rb-in'), catalog: uniqueName('rb-cat'), changelog: uniqueName('rb-log') };
    const now = Date.now();
    const messages = [
      ...syntheticInteractions({ count: 6000, users: 200, items: 500, badRate: 0.02, seed: 41, startTs: now - 5 * 86_400_000, now, toleranceMs: TOLERANCE, maxMessageBytes: DEFAULT_LIMITS.maxMessageBytes }),
    ];
    const first = messages.slice(0, 3000);
    const config = (dir: string) =>
      StreamrecConfig.parse({
        kafka: { brokers: testBrokers() },
        clickhouse: { url: `chdb:${dir}` },
        ingest: {
          groupId: uniqueName('rb-group'),
          topics,
          archive: false,
          history: { outOfOrderToleranceMs: TOLERANCE },
          flush: { intervalMs: 200 },
          consumer: { sessionTimeoutMs: 6000, rebalanceTimeoutMs: 6000, heartbeatIntervalMs: 500 },
        },
      });
    const shared = config(mkdtempSync(path.join(tmpdir(), 'streamrec-rb-')));

    await produceAll(kafka, topics.interactions, first);
    const a = await startIngest({ config: shared });
    await waitFor(() => a.processor.totals.messages >= first.length, 60_000, 'A to consume the first half');
    await a.processor.flush();

    const joined = (r: typeof a): number => (r.source as KafkaSource).joinedAt ?? 0;
    const aFirstJoin = joined(a);
    const b = await startIngest({ config: shared });
    // The rebalance: B joins and A rejoins with fewer partitions.
    await waitFor(() => joined(b) > 0 && joined(a) > aFirstJoin, 60_000, 'the rebalance');
    await produceAll(kafka, topics.interactions, messages.slice(first.length));
    await waitFor(
      () => a.processor.totals.messages + b.processor.totals.messages - a.processor.totals.skipped - b.processor.totals.skipped >= messages.length,
      90_000,
      'A and B to consume everything',
    );
    await Promise.all([a.processor.flush(), b.processor.flush()]);
    // Both worked after the rebalance.
    expect(b.processor.totals.messages).toBeGreaterThan(0);
    await Promise.all([a.stop(), b.stop()]);
    await Promise.all([a.done, b.done]);

    const store = new ChangelogHistoryStore({ kafka, topic: topics.changelog });
    await store.restore();
    expect(historyEventIds(store.values())).toEqual(expectedHistories(messages, 50));
  }, 180_000);
});
