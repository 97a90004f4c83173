import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ChangelogHistoryStore } from '../infra/history';
import { KafkaSource, startIngest, type IngestRuntime } from '../ingest';
import { syntheticInteractions } from '../ingest/synthetic';
import { StreamrecConfig } from '../schemas/config';
import { DEFAULT_LIMITS } from '../schemas/limits';
import { expectedHistories, historyEventIds, produceAll, waitFor } from './ingestHarness';
import { kafkaKind, testBrokers, testKafka, uniqueName } from './kafka';

const TOLERANCE = 10 * 60_000;

/**
 * One ingest process run the way an orchestrator runs it: when it crashes, a fresh one starts
 * with the same config, restores from the changelog and replays from the last commit. (librdkafka's
 * mock cluster sometimes answers a member's SyncGroup with INVALID_REQUEST when the leader synced
 * first, a non-retriable error for kafkajs; a real broker answers with the assignment.)
 */
class Supervised {
  readonly runs: IngestRuntime[] = [];
  readonly crashes: string[] = [];
  private stopping: Promise<void> | undefined;
  /** The latest start (the first, or the replacement of a crashed process). */
  private starting: Promise<void> | undefined;

  constructor(
    private readonly name: string,
    private readonly config: StreamrecConfig,
  ) {}

  start(): Promise<void> {
    if (this.stopping) return Promise.reject(new Error(`${this.name} was stopped; not starting another process`));
    this.starting = (async () => {
      const runtime = await startIngest({ config: this.config });
      this.runs.push(runtime);
      runtime.done.catch((error: unknown) => {
        if (this.stopping) return;
        this.crashes.push((error as Error).message);
        process.stderr.write(`[rebalance test] ${this.name} crashed (${(error as Error).message}); starting a new one\n`);
        // A replacement that cannot start leaves the test waiting until it times out; say why.
        this.start().catch((e: unknown) => this.crashes.push(`replacement failed to start: ${(e as Error).message}`));
      });
    })();
    return this.starting;
  }

  get current(): IngestRuntime {
    return this.runs.at(-1)!;
  }

  /** When the current process last joined the group (0 before it has). */
  joinedAt(): number {
    return (this.current.source as KafkaSource).joinedAt ?? 0;
  }

  /** Messages applied over all runs (redeliveries that were already durable do not count). */
  applied(): number {
    return this.runs.reduce((n, r) => n + r.processor.totals.messages - r.processor.totals.skipped, 0);
  }

  /**
   * Stops the current process (its `done` settles; a failure of its shutdown is thrown) after a
   * start in flight has finished, so no process outlives the test. Once stopped, a crash starts no
   * replacement. Safe to call again: the test stops both before its last check, its teardown again.
   */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      await this.starting?.catch(() => undefined);
      // Crashed ones have stopped themselves (and their failure is in `crashes`).
      await Promise.all(this.runs.slice(0, -1).map((r) => r.stop().catch(() => undefined)));
      const current = this.runs.at(-1);
      if (!current) return;
      await current.stop();
      await current.done;
    })();
    return this.stopping;
  }
}

describe(`two ingest processes in one consumer group on ${kafkaKind()}`, () => {
  /** Every supervisor a test started: stopped after it, also when it failed or timed out. */
  const supervised: Supervised[] = [];
  afterEach(async () => {
    const stopped = await Promise.allSettled(supervised.splice(0).map((s) => s.stop()));
    for (const s of stopped) if (s.status === 'rejected') process.stderr.write(`[rebalance test] teardown: a process failed to stop: ${(s.reason as Error).message}\n`);
  }, 60_000);

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
    const a = new Supervised('A', shared);
    const b = new Supervised('B', shared);
    supervised.push(a, b);
    await a.start();
    await waitFor(() => a.applied() >= first.length, 60_000, 'A to consume the first half');
    await a.current.processor.flush();

    const aFirstJoin = a.joinedAt();
    await b.start();
    // The rebalance: B joins and A rejoins with fewer partitions.
    await waitFor(() => b.joinedAt() > 0 && a.joinedAt() > aFirstJoin, 60_000, 'the rebalance');
    await produceAll(kafka, topics.interactions, messages.slice(first.length));
    await waitFor(() => a.applied() + b.applied() >= messages.length, 90_000, 'A and B to consume everything');
    await Promise.all([a.current.processor.flush(), b.current.processor.flush()]);
    // Both worked after the rebalance.
    expect(b.applied()).toBeGreaterThan(0);
    await Promise.all([a.stop(), b.stop()]);
    if (a.crashes.length + b.crashes.length > 0) process.stderr.write(`[rebalance test] restarts: A ${a.crashes.length}, B ${b.crashes.length}\n`);

    const store = new ChangelogHistoryStore({ kafka, topic: topics.changelog });
    await store.restore();
    expect(historyEventIds(store.values())).toEqual(expectedHistories(messages, 50));
  }, 180_000);
});
