/**
 * `npm run bench -- ingest [--events 200000] [--partitions 16] [--brokers 1] [--produce-batch N] [--profile ingest.cpuprofile]`
 *
 * Produces interaction events to a broker, then consumes the same topic with: (a) a bare kafkajs
 * consumer group that only reads the messages; two ceilings, the bare consumer plus only
 * `JSON.parse` of every message, and plus only the ingest path's decode + validate operator
 * (the full path does both, so their ratios to (a) bound its ratio); (b) the full ingest path
 * (decode, validate, dedupe, history update, changelog, ClickHouse archive, commit). Rates are
 * measured from the start of the first fetch to the last message done (group joins excluded). Broker: KAFKA_BROKERS, or
 * librdkafka's mock cluster with the topics pre-created (each mock partition keeps at most
 * ~5 MiB, so the topic gets enough partitions to hold every event; `--brokers` spreads them over
 * that many mock brokers, and kafkajs fetches from each broker in parallel). `--profile` writes a CPU
 * profile of the main thread during (b) (open it in Chrome DevTools or speedscope).
 *
 * The events are produced partition by partition (each to the partition kafkajs's default
 * partitioner gives its key), in requests of up to 768 KB; `--produce-batch N` produces requests of
 * at most N messages of all partitions instead. This matters on the mock cluster: it answers a
 * fetch with at most one stored message set per partition (librdkafka's `rd_kafka_mock_handle_Fetch`),
 * so a consumer gets per partition and fetch what one produce request put there. Small mixed
 * requests make every fetch small, and both consumers then spend their time on fetch round trips.
 * A real broker answers a consumer that is behind with up to `maxBytesPerPartition` (4 MB) per
 * partition whatever the producer's batching was; 768 KB per partition comes closest to that.
 */
import { isUtf8 } from 'node:buffer';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Partitioners, type Kafka, type Message } from 'kafkajs';
import { ConfigError, KafkaError } from '../errors';
import { ensureTopics } from '../infra/history';
import { createKafka, sendChunked } from '../infra/kafka';
import { startMockCluster } from '../test/brokers/mockCluster';
import { KafkaSource, startIngest } from '../ingest';
import { BatchPipeline } from '../ingest/batchPipeline';
import { decodeEvents } from '../ingest/operators';
import { syntheticInteractions } from '../ingest/synthetic';
import type { RawBatch } from '../ingest/types';
import { Instrumentation } from '../instrumentation';
import { KafkaConfig, StreamrecConfig } from '../schemas/config';
import { interactionEventSchema } from '../schemas/events';
import { fastInteraction } from '../schemas/fastInteraction';
import { DEFAULT_LIMITS } from '../schemas/limits';
import { loadConfig } from '../schemas/loadConfig';
import { numberFlag, parseFlags } from './_flags';

/** Profiles the main thread while `fn` runs and writes the profile to `file` (when given). */
async function profiled<T>(file: string | undefined, fn: () => Promise<T>): Promise<T> {
  if (!file) return fn();
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 200 });
  await session.post('Profiler.start');
  try {
    return await fn();
  } finally {
    const { profile } = await session.post('Profiler.stop');
    writeFileSync(file, JSON.stringify(profile));
    session.disconnect();
    log(`CPU profile of (b) written to ${file}`);
  }
}

const log = (text: string): void => void process.stderr.write(`[bench ingest] ${text}\n`);

/**
 * `messages` grouped by the partition kafkajs's default partitioner gives their key, one group
 * per partition in the topic's partition order, each message with its partition set.
 */
async function byPartition(kafka: Kafka, topic: string, messages: readonly Message[]): Promise<Message[][]> {
  const admin = kafka.admin();
  await admin.connect();
  const partitionMetadata = await admin
    .fetchTopicMetadata({ topics: [topic] })
    .then((m) => m.topics[0]?.partitions ?? [])
    .finally(() => admin.disconnect());
  if (partitionMetadata.length === 0) throw new KafkaError(`topic ${topic} has no partitions`, { context: { topic } });
  const partitioner = Partitioners.DefaultPartitioner();
  const groups = new Map<number, Message[]>(partitionMetadata.map((p) => [p.partitionId, []]));
  for (const message of messages) {
    const partition = partitioner({ topic, partitionMetadata, message });
    const group = groups.get(partition);
    if (!group) throw new KafkaError(`the partitioner chose partition ${partition}, which topic ${topic} does not have`, { context: { topic } });
    group.push({ ...message, partition });
  }
  return [...groups.keys()].sort((a, b) => a - b).map((p) => groups.get(p) ?? []);
}

/**
 * Produces `messages`: each partition's in requests of their own (up to 768 KB, see
 * `sendChunked`), or, with `perSend`, in requests of at most that many messages of all partitions.
 */
async function produce(kafka: Kafka, topic: string, messages: Message[], perSend: number | undefined): Promise<number> {
  const producer = kafka.producer({ allowAutoTopicCreation: true });
  await producer.connect();
  const started = Date.now();
  if (perSend === undefined) {
    for (const group of await byPartition(kafka, topic, messages)) await sendChunked(producer, topic, group);
  } else {
    for (let i = 0; i < messages.length; i += perSend) await sendChunked(producer, topic, messages.slice(i, i + perSend));
  }
  const seconds = (Date.now() - started) / 1000;
  await producer.disconnect();
  return seconds;
}

/** How long one consumer pass may take before the benchmark gives up on it. */
const CONSUME_TIMEOUT_MS = 300_000;

/** What a ceiling pass does with each batch's messages (nothing for the bare consumer). */
type BatchStep = (batch: RawBatch) => Promise<unknown> | unknown;

/**
 * Reads `total` messages with a consumer group of its own that hands each batch to `step` (none:
 * the bare consumer): seconds from the start of its first fetch to the last message done, and
 * the fetches in between.
 */
async function consume(kafka: Kafka, topic: string, total: number, name: string, step?: BatchStep): Promise<{ seconds: number; fetches: number }> {
  const consumer = kafka.consumer({ groupId: `bench-${name}-${Date.now()}`, maxBytesPerPartition: 4 * 1024 * 1024, maxBytes: 32 * 1024 * 1024, maxWaitTimeInMs: 200 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  let count = 0;
  let start = 0;
  let last = 0;
  let fetches = 0;
  // kafkajs reports a fetch when it has been fetched and decoded, before its batches are
  // handled; the earliest start among the fetches before the first batch (one per broker).
  consumer.on(consumer.events.FETCH, ({ payload }) => {
    const began = Date.now() - payload.duration;
    if (count === 0) start = start === 0 ? began : Math.min(start, began);
    if (last === 0) fetches++;
  });
  // A failed step would make kafkajs restart the consumer and count messages twice: fail instead.
  const crashed = new Promise<never>((_, reject) => consumer.on(consumer.events.CRASH, (e) => reject(new KafkaError(`${name} consumer crashed: ${e.payload.error.message}`, { cause: e.payload.error }))));
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new KafkaError(`${name} consumer read ${count} of ${total} messages in ${CONSUME_TIMEOUT_MS / 1000} s`)), CONSUME_TIMEOUT_MS);
  });
  const done = new Promise<void>((resolve, reject) => {
    consumer
      .run({
        autoCommit: false,
        eachBatch: async ({ batch }) => {
          if (step) await step({ topic: batch.topic, partition: batch.partition, messages: batch.messages });
          count += batch.messages.length;
          if (count >= total && last === 0) {
            last = Date.now();
            resolve();
          }
        },
      })
      .catch(reject);
  });
  try {
    await Promise.race([done, crashed, deadline]);
  } finally {
    clearTimeout(timer);
    await consumer.disconnect();
  }
  return { seconds: (last - start) / 1000, fetches };
}

/**
 * The ceiling passes: the least work any JSON ingest path does per message (UTF-8 check and
 * `JSON.parse`), and the ingest path's own decode + validate operator alone. The full path does
 * both and more, so it cannot be faster than either; their ratios to the bare consumer bound
 * the full path's.
 */
function ceilingSteps(decode: BatchPipeline<RawBatch, unknown>): Record<'json_parse' | 'decode_validate', BatchStep> {
  let sink = 0;
  return {
    json_parse: (batch) => {
      for (const m of batch.messages) {
        if (m.value === null || !isUtf8(m.value)) continue;
        try {
          sink += (JSON.parse(m.value.toString('utf8')) as { ts?: number }).ts === undefined ? 0 : 1;
        } catch {
          sink--;
        }
      }
      return sink;
    },
    decode_validate: (batch) => decode.process(batch),
  };
}

export async function run(args: string[]): Promise<Record<string, unknown>> {
  const flags = parseFlags(args, new Set(['events', 'partitions', 'brokers', 'profile', 'produce-batch']));
  const events = numberFlag(flags, 'events') ?? 200_000;
  const partitions = numberFlag(flags, 'partitions') ?? 16;
  const brokerCount = numberFlag(flags, 'brokers') ?? 1;
  const perSend = numberFlag(flags, 'produce-batch');
  if (perSend !== undefined && (!Number.isInteger(perSend) || perSend < 1)) throw new ConfigError(`--produce-batch must be a positive integer, got ${perSend}`);
  const stamp = Date.now();
  const topics = { interactions: `bench-in-${stamp}`, catalog: `bench-cat-${stamp}`, changelog: `bench-log-${stamp}`, deadLetterSuffix: '.dlq' };
  const external = process.env.KAFKA_BROKERS;
  const mock = external
    ? undefined
    : await startMockCluster({ brokers: brokerCount, topics: [{ name: topics.interactions, partitions }, { name: topics.changelog, partitions }] });
  const brokers = external ? external.split(',') : (mock?.brokers ?? []);
  const kafka = createKafka(KafkaConfig.parse({ brokers, clientId: 'bench' }));
  const chDir = mkdtempSync(path.join(tmpdir(), 'streamrec-bench-ingest-'));
  try {
    const now = Date.now();
    const messages: Message[] = [];
    for (const m of syntheticInteractions({ count: events, users: 20_000, items: 50_000, badRate: 0.01, seed: 97, startTs: now - 30 * 86_400_000, now, toleranceMs: 600_000, maxMessageBytes: 4096, faults: ['not_json', 'truncated', 'missing_user', 'wrong_types', 'unknown_type', 'future_ts', 'negative_ts', 'duplicate', 'late'] })) {
      messages.push({ key: m.key, value: m.value });
    }
    const bytes = messages.reduce((n, m) => n + (m.value as Buffer).length, 0);
    log(`producing ${events} events (${(bytes / 1e6).toFixed(1)} MB) to ${external ? `external ${brokers}` : `mock cluster, ${partitions} partitions`}`);
    await ensureTopics(kafka, [topics.interactions], partitions); // an external broker's topic, with --partitions
    const produceSeconds = await produce(kafka, topics.interactions, messages, perSend);

    log('(a) bare kafkajs consumer');
    const { seconds: rawSeconds, fetches: rawFetches } = await consume(kafka, topics.interactions, events, 'raw');
    const limits = { ...DEFAULT_LIMITS, maxMessageBytes: 4096 };
    const ceilings: Record<string, { events_per_s: number; ratio: number }> = {};
    const decode = new BatchPipeline<RawBatch, unknown>(decodeEvents({ schema: interactionEventSchema(limits), limits, fastPath: fastInteraction }));
    try {
      for (const [name, step] of Object.entries(ceilingSteps(decode))) {
        log(`ceiling: bare consumer + ${name.replace('_', ' ')}`);
        const { seconds } = await consume(kafka, topics.interactions, events, name, step);
        ceilings[name] = { events_per_s: Math.round(events / seconds), ratio: Number((rawSeconds / seconds).toFixed(3)) };
      }
    } finally {
      decode.close();
    }

    log('(b) full ingest path');
    // STREAMREC__* environment variables apply (e.g. STREAMREC__INGEST__FLUSH__INTERVAL_MS).
    const config = loadConfig(StreamrecConfig, {
      env: process.env,
      overrides: {
        kafka: { brokers, clientId: 'bench' },
        clickhouse: { url: `chdb:${chDir}` },
        ingest: { groupId: `bench-ingest-${stamp}`, topics, limits },
      },
    });
    // Listening before the runtime starts: its first fetch may end before startIngest returns.
    const instrumentation = new Instrumentation();
    let start = 0;
    let operatorMs = 0;
    let flushMs = 0;
    let flushes = 0;
    const steps = { archive: 0, histories: 0, commit: 0 };
    // Timed and counted like the bare consumer's: from the start of the first fetch.
    let fetches = 0;
    let handled = 0;
    instrumentation.on('ingest.fetch_end', (f) => {
      const began = Date.now() - f.durationMs;
      if (handled === 0) start = start === 0 ? began : Math.min(start, began);
      if (handled < events) fetches++;
    });
    instrumentation.on('ingest.batch_end', (b) => {
      handled += b.messages;
      operatorMs += b.durationMs;
    });
    let catchUpFlushes = 0;
    instrumentation.on('ingest.flush_end', (f) => {
      flushMs += f.durationMs;
      flushes++;
      if (f.intervalMs > config.ingest.flush.intervalMs) catchUpFlushes++;
      steps.archive += f.archiveMs;
      steps.histories += f.historiesMs;
      steps.commit += f.commitMs;
    });
    const cpuBefore = process.cpuUsage();
    const runtime = await startIngest({ config, instrumentation });
    const { ingestSeconds, cpu } = await profiled(flags.get('profile'), async () => {
      const deadline = Date.now() + CONSUME_TIMEOUT_MS;
      let failed: unknown;
      runtime.done.then(
        () => (failed = new KafkaError(`the ingest path stopped after ${runtime.processor.totals.messages} of ${events} messages`)),
        (error: unknown) => (failed = error ?? new KafkaError('the ingest path failed')),
      );
      while (runtime.processor.totals.messages < events) {
        if (failed !== undefined) throw failed;
        if (Date.now() > deadline) throw new KafkaError(`the ingest path handled ${runtime.processor.totals.messages} of ${events} messages in ${CONSUME_TIMEOUT_MS / 1000} s`);
        await new Promise((r) => setTimeout(r, 20));
      }
      await runtime.processor.flush();
      return { ingestSeconds: (Date.now() - start) / 1000, cpu: process.cpuUsage(cpuBefore) };
    });
    // A restarted consumer replays from the last commit: its messages would be counted twice.
    if (runtime.source instanceof KafkaSource && runtime.source.restarts > 0) {
      throw new KafkaError(`the ingest consumer restarted ${runtime.source.restarts} time(s) during the run; its rate would count redeliveries`);
    }
    await runtime.stop();
    await runtime.done;
    const totals = runtime.processor.totals;

    const raw = Math.round(events / rawSeconds);
    const ingest = Math.round(events / ingestSeconds);
    return {
      broker: external ? 'external' : `librdkafka mock cluster (${brokerCount} broker${brokerCount === 1 ? '' : 's'}, ${partitions} partitions)`,
      events,
      payload_mb: Number((bytes / 1e6).toFixed(1)),
      produce_events_per_s: Math.round(events / produceSeconds),
      produce: perSend === undefined ? 'per partition, requests of up to 768 KB' : `requests of up to ${perSend} messages of all partitions (and 768 KB)`,
      raw_events_per_s: raw,
      ingest_events_per_s: ingest,
      ratio: Number((ingest / raw).toFixed(3)),
      // Upper bounds of the full path's ratio: the bare consumer plus only part of its work.
      ceilings,
      // Few messages per fetch means round trips, not processing, bound the rates (see the top).
      fetches: { raw: rawFetches, ingest: fetches },
      target: { ratio: 0.8, ingest_events_per_s: 80_000, met: ingest / raw >= 0.8 && ingest >= 80_000 },
      ingest_breakdown_s: {
        total: Number(ingestSeconds.toFixed(2)),
        operators: Number((operatorMs / 1000).toFixed(2)),
        flushes: Number((flushMs / 1000).toFixed(2)),
        flush_count: flushes,
        catch_up_flushes: catchUpFlushes,
        node_cpu_s: Number(((cpu.user + cpu.system) / 1e6).toFixed(2)),
        flush_archive_and_dead_letters: Number((steps.archive / 1000).toFixed(2)),
        flush_changelog: Number((steps.histories / 1000).toFixed(2)),
        flush_commit: Number((steps.commit / 1000).toFixed(2)),
      },
      accepted: totals.accepted,
      dead_letters: totals.deadLetters,
      users: runtime.store.size,
      flush_policy: config.ingest.flush,
      peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024),
    };
  } finally {
    await mock?.stop();
    rmSync(chDir, { recursive: true, force: true });
  }
}
