import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startIngest } from '../ingest';
import { syntheticInteractions } from '../ingest/synthetic';
import { StreamrecConfig } from '../schemas/config';
import { DEFAULT_LIMITS } from '../schemas/limits';
import { expectedHistories, historyEventIds, produceAll, waitFor } from './ingestHarness';
import { kafkaKind, testBrokers, testKafka, uniqueName } from './kafka';

const TOLERANCE = 10 * 60_000;

describe(`restore on ${kafkaKind()}`, () => {
  it('a new ingest runtime (as after a restart) rebuilds histories from the changelog before consuming, and continues where the first stopped', async () => {
    const kafka = testKafka();
    const topics = { interactions: uniqueName('restore-in'), catalog: uniqueName('restore-cat'), changelog: uniqueName('restore-log') };
    const now = Date.now();
    const messages = [
      ...syntheticInteractions({ count: 6000, users: 150, items: 800, badRate: 0.03, seed: 31, startTs: now - 5 * 86_400_000, now, toleranceMs: TOLERANCE, maxMessageBytes: DEFAULT_LIMITS.maxMessageBytes }),
    ];
    const first = messages.slice(0, 3500);
    const config = StreamrecConfig.parse({
      kafka: { brokers: testBrokers() },
      clickhouse: { url: `chdb:${mkdtempSync(path.join(tmpdir(), 'streamrec-restore-'))}` },
      ingest: { groupId: uniqueName('restore-group'), topics, history: { outOfOrderToleranceMs: TOLERANCE } },
    });

    await produceAll(kafka, topics.interactions, first);
    // The first process writes its changelog from a worker thread, the second from its own.
    const a = await startIngest({ config: { ...config, ingest: { ...config.ingest, changelogWriter: 'worker' } } });
    await waitFor(() => a.processor.totals.messages >= first.length, 60_000, 'the first half');
    await a.stop();
    await a.done;
    expect(historyEventIds(a.store.values())).toEqual(expectedHistories(first, 50));

    await produceAll(kafka, topics.interactions, messages.slice(first.length));
    const b = await startIngest({ config });
    // The restored state is in place before any new message is applied.
    expect(historyEventIds(b.store.values())).toEqual(expectedHistories(first, 50));
    await waitFor(() => b.processor.totals.messages >= messages.length - first.length, 60_000, 'the second half');
    await b.stop();
    await b.done;
    // The second process saw only new messages (the first committed everything it applied).
    expect(b.processor.totals.messages).toBe(messages.length - first.length);
    expect(b.processor.totals.skipped).toBe(0);
    expect(historyEventIds(b.store.values())).toEqual(expectedHistories(messages, 50));
  }, 120_000);
});
