/**
 * `npm run bench -- fuzz [--cases 100000] [--seed 20261204]`
 *
 * Issue 20's rule on a broker: hostile messages (ingest/fuzz.ts: mutated interaction and catalog
 * events, fast-check with a fixed seed) are produced to the interactions and catalog topics, and
 * `streamrec ingest`'s runtime (Kafka source, embedded ClickHouse archive, dead-letter topic and
 * table, changelog) consumes them. Counted from what is stored, not from the processor's own
 * totals: `archived` and `dead_lettered` are distinct origins (topic, partition, offset) in the
 * archive tables and `dead_letters` (merges stopped, so no row collapses before it is counted);
 * `lost` is the cases in neither; `crashes` is how often the runtime failed (it is restarted, as a
 * supervisor would, up to 5 times) plus unhandled rejections and uncaught exceptions.
 * `events_per_s` is messages over the time from the runtime's start to the last one stored.
 *
 * Broker: KAFKA_BROKERS, or librdkafka's mock cluster with the topics pre-created with enough
 * partitions that none passes the mock's 5 MiB per partition (messages go round-robin). Event
 * limits are the defaults (64 KiB messages), so a twentieth or so of the cases are oversized.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import type { Message } from 'kafkajs';
import { ConfigError } from '../errors';
import { openClickHouse } from '../infra/clickhouse';
import { createKafka, sendChunked } from '../infra/kafka';
import { startIngest, type IngestRuntime } from '../ingest';
import { fuzzMessage, type FuzzMessage } from '../ingest/fuzz';
import { KafkaConfig, StreamrecConfig } from '../schemas/config';
import { loadConfig } from '../schemas/loadConfig';
import { startMockCluster } from '../test/brokers/mockCluster';
import { numberFlag, parseFlags } from './_flags';

const log = (line: string): void => void process.stderr.write(`[fuzz] ${line}\n`);
const PARTITION_BYTES = 3 * 1024 * 1024;
const TIMEOUT_MS = 30 * 60_000;

export async function run(args: string[]): Promise<Record<string, unknown>> {
  const flags = parseFlags(args, new Set(['cases', 'seed']));
  const cases = numberFlag(flags, 'cases') ?? 100_000;
  const seed = numberFlag(flags, 'seed') ?? 20_261_204;
  if (!Number.isInteger(cases) || cases < 1) throw new ConfigError(`--cases must be a positive integer, got ${cases}`);
  const now = Date.now();
  log(`generating ${cases} messages (seed ${seed})`);
  const messages: FuzzMessage[] = fc.sample(fuzzMessage(now), { numRuns: cases, seed });
  const stamp = Date.now();
  const topics = { interactions: `fuzz-in-${stamp}`, catalog: `fuzz-cat-${stamp}`, changelog: `fuzz-log-${stamp}`, deadLetterSuffix: '.dlq' };
  const byTopic = { interactions: messages.filter((m) => m.topic === 'interactions'), catalog: messages.filter((m) => m.topic === 'catalog') };
  const partitionsFor = (list: readonly FuzzMessage[]): number => Math.max(4, Math.ceil(list.reduce((n, m) => n + (m.value?.length ?? 0) + 64, 0) / PARTITION_BYTES));
  const partitions = { interactions: partitionsFor(byTopic.interactions), catalog: partitionsFor(byTopic.catalog) };
  const external = process.env.KAFKA_BROKERS;
  const mock = external
    ? undefined
    : await startMockCluster({
        topics: [
          { name: topics.interactions, partitions: partitions.interactions },
          { name: topics.catalog, partitions: partitions.catalog },
          { name: topics.changelog, partitions: partitions.interactions },
          { name: `${topics.interactions}.dlq`, partitions: partitions.interactions },
          { name: `${topics.catalog}.dlq`, partitions: partitions.catalog },
        ],
      });
  const brokers = external ? external.split(',') : (mock?.brokers ?? []);
  const kafka = createKafka(KafkaConfig.parse({ brokers, clientId: 'bench-fuzz' }));
  const chDir = mkdtempSync(path.join(tmpdir(), 'streamrec-bench-fuzz-'));
  let unhandled = 0;
  const onUnhandled = (error: unknown): void => {
    unhandled++;
    log(`unhandled: ${(error as Error)?.stack ?? String(error)}`);
  };
  process.on('unhandledRejection', onUnhandled);
  process.on('uncaughtExceptionMonitor', onUnhandled);
  try {
    const producer = kafka.producer({ allowAutoTopicCreation: true });
    await producer.connect();
    for (const topic of ['interactions', 'catalog'] as const) {
      const list: Message[] = byTopic[topic].map((m, i) => ({ key: m.key, value: m.value, partition: i % partitions[topic] }));
      log(`producing ${list.length} ${topic} messages to ${partitions[topic]} partitions`);
      await sendChunked(producer, topics[topic], list);
    }
    await producer.disconnect();

    const config = loadConfig(StreamrecConfig, {
      env: process.env,
      overrides: {
        kafka: { brokers, clientId: 'bench-fuzz' },
        clickhouse: { url: `chdb:${chDir}` },
        ingest: { groupId: `bench-fuzz-${stamp}`, topics },
      },
    });
    // Rows are counted as inserted: no merge may collapse two of them first (the same catalog item,
    // say). Merges stay stopped while this connection keeps the embedded engine open.
    const store = await openClickHouse(config.clickhouse);
    for (const table of ['interactions', 'items', 'dead_letters']) await store.command(`SYSTEM STOP MERGES ${store.table(table)}`);

    const started = Date.now();
    let crashes = 0;
    let runtime: IngestRuntime | undefined;
    let lastStored = started;
    for (;;) {
      runtime = await startIngest({ config });
      let failed = false;
      runtime.done.catch((error: unknown) => {
        failed = true;
        log(`ingest failed: ${(error as Error).message}`);
      });
      const deadline = started + TIMEOUT_MS;
      let handled = 0;
      while (!failed) {
        // Done once every message was handled and the last flush committed them.
        const totals = runtime.processor.totals;
        if (totals.messages + totals.lostToRetention !== handled) {
          handled = totals.messages + totals.lostToRetention;
          lastStored = Date.now();
          process.stderr.write(`\r[fuzz] handled ${handled} of ${cases}`);
        }
        if (runtime.processor.consumerLag() === 0 && Date.now() - lastStored > 3000) break;
        if (Date.now() > deadline) throw new ConfigError(`fuzz: not done after ${TIMEOUT_MS / 60_000} min (${handled} handled)`);
        await new Promise((r) => setTimeout(r, 100));
      }
      process.stderr.write('\n');
      if (!failed) break;
      crashes++;
      await runtime.stop().catch(() => undefined);
      if (crashes > 5) break;
    }
    await runtime.processor.flush().catch(() => undefined);
    const seconds = (lastStored - started) / 1000;
    await runtime.stop().catch(() => undefined);
    await runtime.done.catch(() => undefined);
    const totals = runtime.processor.totals;

    try {
      const origins = (table: string): string => `SELECT topic, partition, offset FROM ${store.table(table)}`;
      const one = async (sql: string): Promise<number> => Number(Object.values((await store.query<Record<string, string>>(sql))[0] ?? { n: 0 })[0]);
      const archived = await one(`SELECT count() AS n FROM (${origins('interactions')} UNION DISTINCT ${origins('items')})`);
      const deadLettered = await one(`SELECT count() AS n FROM (${origins('dead_letters')} GROUP BY topic, partition, offset)`);
      const both = await one(`SELECT count() AS n FROM (${origins('interactions')} UNION DISTINCT ${origins('items')}) WHERE (topic, partition, offset) IN (${origins('dead_letters')})`);
      const stored = await one(`SELECT count() AS n FROM (${origins('interactions')} UNION DISTINCT ${origins('items')} UNION DISTINCT ${origins('dead_letters')})`);
      const twice = await one(`SELECT count() AS n FROM (SELECT topic, partition, offset, count() AS c FROM ${store.table('dead_letters')} GROUP BY topic, partition, offset HAVING c > 1)`);
      const codes = await store.query<{ code: string; n: string }>(`SELECT code, count() AS n FROM ${store.table('dead_letters')} GROUP BY code ORDER BY code`);
      log(`dead-letter codes: ${codes.map((c) => `${c.code} ${c.n}`).join(', ')}`);
      return {
        broker: external ? 'external' : `librdkafka mock cluster (${partitions.interactions} + ${partitions.catalog} partitions)`,
        seed,
        mutated: messages.filter((m) => m.mutations.length > 0).length,
        processor_totals: { accepted: totals.accepted, items: totals.items, dead_letters: totals.deadLetters, skipped: totals.skipped, lost_to_retention: totals.lostToRetention },
        archived_and_dead_lettered: both,
        dead_lettered_twice: twice,
        seconds: Number(seconds.toFixed(1)),
        cases,
        archived,
        dead_lettered: deadLettered,
        lost: cases - stored,
        crashes: crashes + unhandled,
        events_per_s: Math.round(cases / seconds),
      };
    } finally {
      await store.close();
    }
  } finally {
    process.off('unhandledRejection', onUnhandled);
    process.off('uncaughtExceptionMonitor', onUnhandled);
    await mock?.stop();
  }
}
