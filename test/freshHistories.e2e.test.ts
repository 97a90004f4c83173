import { ChangelogHistoryStore } from '../infra/history';
import { testHistory as history } from '../infra/history/testing/histories';
import { waitFor } from './ingestHarness';
import { kafkaKind, testKafka, uniqueName } from './kafka';
import { FreshHistories } from '../serving/histories';

describe(`FreshHistories on ${kafkaKind()}`, () => {
  const kafka = testKafka('serving-test');

  it('catches up with what ingest wrote, then follows new flushes and ignores stale records', async () => {
    const topic = uniqueName('serving-log');
    const ingest = new ChangelogHistoryStore({ kafka, topic });
    for (let u = 0; u < 300; u++) ingest.put(history(`u${u}`, u % 4, [`i${u}`], u, 10_000));
    await ingest.flush();
    ingest.put(history('u1', 1, ['i1', 'i2'], 400, 20_000)); // a second record for u1
    await ingest.flush();

    const serving = await FreshHistories.follow({ kafka, topic, now: () => 25_000 });
    try {
      await serving.caughtUp(30_000);
      // Caught up means everything written before following began is in, not merely some of it.
      expect(serving.size).toBe(300);
      expect(serving.get('u1')?.itemIds).toEqual(['i1', 'i2']);
      expect(serving.stats()).toEqual({ users: 300, records: 301, caughtUp: true, newestChangeAgeMs: 5_000 });

      // A later flush reaches serving.
      ingest.put(history('u7', 3, ['i7', 'i8', 'i9'], 500, 24_000));
      ingest.put(history('new', 2, ['i3'], 501, 24_000));
      await ingest.flush();
      await waitFor(() => serving.get('u7')?.itemIds.length === 3 && serving.get('new') !== undefined, 30_000, 'the later flush');
      expect(serving.size).toBe(301);
      expect(serving.stats().newestChangeAgeMs).toBe(1_000);

      // A stale record (a previous owner's late flush after a rebalance) does not replace newer state.
      const previousOwner = new ChangelogHistoryStore({ kafka, topic });
      previousOwner.put(history('u7', 3, ['i7'], 3, 9_000));
      previousOwner.put(history('u8', 0, ['i8', 'x'], 900, 24_500)); // newer: applied
      await previousOwner.flush();
      await previousOwner.close();
      await waitFor(() => serving.get('u8')?.itemIds.length === 2, 30_000, 'the previous owner\'s records');
      expect(serving.get('u7')?.itemIds).toEqual(['i7', 'i8', 'i9']);
    } finally {
      await serving.stop();
      await ingest.close();
    }
  }, 90_000);

  it('is caught up at once on an empty or missing changelog', async () => {
    const serving = await FreshHistories.follow({ kafka, topic: uniqueName('serving-empty') });
    try {
      await serving.caughtUp(1_000);
      expect(serving.stats()).toMatchObject({ users: 0, records: 0, caughtUp: true, newestChangeAgeMs: undefined });
    } finally {
      await serving.stop();
    }
  }, 60_000);
});
