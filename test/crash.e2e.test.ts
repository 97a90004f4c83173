import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openClickHouse } from '../infra/clickhouse';
import { ChangelogHistoryStore } from '../infra/history';
import { syntheticInteractions } from '../ingest/synthetic';
import { Random } from '../random';
import { ClickHouseConfig } from '../schemas/config';
import { DEFAULT_LIMITS } from '../schemas/limits';
import { exited, spawnCli } from './cli';
import { expectedHistories, historyEventIds, produceAll } from './ingestHarness';
import { kafkaKind, testBrokers, testKafka, uniqueName } from './kafka';

const TOLERANCE = 10 * 60_000;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe(`crash safety on ${kafkaKind()}`, () => {
  it('SIGKILLs the ingest process at random points while events flow; after restarts nothing is lost or applied twice', async () => {
    const kafka = testKafka();
    const group = uniqueName('crash-group');
    const topics = { interactions: uniqueName('crash-in'), catalog: uniqueName('crash-cat'), changelog: uniqueName('crash-log') };
    const chDir = mkdtempSync(path.join(tmpdir(), 'streamrec-crash-'));
    const now = Date.now();
    const messages = [
      ...syntheticInteractions({ count: 12_000, users: 300, items: 2000, badRate: 0.05, seed: 23, startTs: now - 10 * 86_400_000, now, toleranceMs: TOLERANCE, maxMessageBytes: DEFAULT_LIMITS.maxMessageBytes }),
    ];
    const bad = messages.filter((m) => m.expected !== undefined).length;
    const args = ['ingest', '--source', `kafka://${testBrokers().join(',')}/${topics.interactions}`, '--catalog-topic', topics.catalog, '--group', group, '--clickhouse', `chdb:${chDir}`];
    const env = {
      STREAMREC__INGEST__TOPICS__CHANGELOG: topics.changelog,
      STREAMREC__INGEST__HISTORY__OUT_OF_ORDER_TOLERANCE_MS: String(TOLERANCE),
      // Small flushes give many points to crash between; short sessions let a restarted member join fast.
      STREAMREC__INGEST__FLUSH__MAX_EVENTS: '400',
      STREAMREC__INGEST__FLUSH__INTERVAL_MS: '150',
      STREAMREC__INGEST__CONSUMER__SESSION_TIMEOUT_MS: '6000',
      STREAMREC__INGEST__CONSUMER__REBALANCE_TIMEOUT_MS: '6000',
      STREAMREC__INGEST__CONSUMER__HEARTBEAT_INTERVAL_MS: '500',
      STREAMREC__INGEST__CONSUMER__MAX_BYTES_PER_PARTITION: '32768',
    };

    // The stream flows in the background while the consumer is killed and restarted.
    let produced = false;
    const producing = (async () => {
      for (let i = 0; i < messages.length; i += 400) {
        await produceAll(kafka, topics.interactions, messages.slice(i, i + 400));
        await sleep(1200);
      }
      produced = true;
    })();

    const changelogSize = async (): Promise<number> => {
      const admin = kafka.admin();
      await admin.connect();
      try {
        return (await admin.fetchTopicOffsets(topics.changelog)).reduce((n, p) => n + Number(p.high), 0);
      } catch {
        return 0;
      } finally {
        await admin.disconnect();
      }
    };
    const rng = new Random(5);
    const progress: number[] = [];
    while (!produced && progress.length < 5) {
      const child = spawnCli(args, env);
      // Wait until this process is writing histories (restore and group join take seconds), then
      // kill it at a random moment while it works.
      const before = await changelogSize();
      const deadline = Date.now() + 60_000;
      while ((await changelogSize()) <= before && !produced) {
        if (child.exitCode !== null) throw new Error(`ingest exited early (${child.exitCode}):\n${child.output()}`);
        if (Date.now() > deadline) throw new Error(`ingest made no progress in 60 s:\n${child.output()}`);
        await sleep(100);
      }
      if (produced) {
        child.kill('SIGKILL');
        await exited(child);
        break;
      }
      await sleep(rng.int(1500));
      child.kill('SIGKILL');
      await exited(child);
      progress.push(await changelogSize());
    }
    await producing;

    // A last run consumes the rest and stops by itself once idle.
    const last = spawnCli([...args, '--idle-exit-ms', '5000'], env);
    const timer = setTimeout(() => last.kill('SIGKILL'), 90_000);
    const result = await exited(last);
    clearTimeout(timer);
    expect({ code: result.code, output: result.code === 0 ? '' : last.output() }).toEqual({ code: 0, output: '' });
    process.stderr.write(`[crash test] changelog records after each kill: ${progress.join(', ')}\n`);
    // Each kill landed while that process was applying new events (the changelog had grown).
    expect(progress.length).toBeGreaterThanOrEqual(3);

    const store = new ChangelogHistoryStore({ kafka, topic: topics.changelog });
    await store.restore();
    expect(historyEventIds(store.values())).toEqual(expectedHistories(messages, 50));

    const ch = await openClickHouse(ClickHouseConfig.parse({ url: `chdb:${chDir}` }));
    try {
      const [archive] = await ch.query<{ n: string; distinct: string }>(`SELECT count() AS n, uniqExact(event_id) AS distinct FROM ${ch.table('interactions')} FINAL`);
      expect(Number(archive?.distinct)).toBe(messages.length - bad);
      expect(Number(archive?.n)).toBe(messages.length - bad);
      const [dead] = await ch.query<{ n: string }>(`SELECT uniqExact(topic, partition, offset) AS n FROM ${ch.table('dead_letters')}`);
      expect(Number(dead?.n)).toBe(bad);
    } finally {
      await ch.close();
    }
  }, 240_000);
});
