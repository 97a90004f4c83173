import { CompressionTypes, type Kafka, type Producer } from 'kafkajs';
import { IngestArchive, openClickHouse, refusalReason, refusesRowContent, writeIsolating, type ClickHouse } from '../infra/clickhouse';
import { ChangelogHistoryStore, MemoryHistoryStore, ensureChangelogTopic, ensureTopics, type HistoryStore } from '../infra/history';
import { KafkaDeadLetterPublisher, WorkerProducer, createKafka } from '../infra/kafka';
import { Instrumentation } from '../instrumentation';
import { createLogger } from '../logging';
import type { StreamrecConfig } from '../schemas/config';
import { LagRows } from './lagRows';
import { IngestMetrics } from './metrics';
import { IngestProcessor, type DeadLetterSink } from './processor';
import { InProcessSource, KafkaSource, type Assignment, type EventSource } from './sources';
import type { RawBatch } from './types';

const log = createLogger('ingest.run');

export interface IngestRuntime {
  readonly processor: IngestProcessor;
  /** Prometheus metrics of this runtime (serve `metrics.registry.metrics()` on /metrics). */
  readonly metrics: IngestMetrics;
  readonly store: HistoryStore;
  readonly source: EventSource;
  readonly clickhouse: ClickHouse | undefined;
  readonly instrumentation: Instrumentation;
  /** Resolves when the source has stopped and everything was flushed, committed and closed. */
  readonly done: Promise<void>;
  /** Graceful shutdown: finish the batch in flight, flush, commit, disconnect. */
  stop(): Promise<void>;
}

export interface RunIngestOptions {
  readonly config: StreamrecConfig;
  /** In-process batches instead of Kafka (`memory:` source). */
  readonly batches?: Iterable<RawBatch> | AsyncIterable<RawBatch>;
  /** Stop by itself once no batch has arrived for this long (tests, one-shot runs). */
  readonly idleExitMs?: number;
  readonly instrumentation?: Instrumentation;
}

class ClickHouseDeadLetters implements DeadLetterSink {
  constructor(private readonly archive: IngestArchive) {}
  async publish(letters: Parameters<DeadLetterSink['publish']>[0]): Promise<void> {
    // A dead letter ClickHouse cannot store must not stop ingest: it is logged (with its origin)
    // and left to the dead-letter topic, which keeps every dead letter.
    const refused = await writeIsolating((rows) => this.archive.insertDeadLetters(rows), letters, refusesRowContent);
    for (const { row, error } of refused) {
      log.error({ origin: row.origin, code: row.error.code, err: refusalReason(error) }, 'the dead_letters table refused a dead letter; the dead-letter topic keeps it');
    }
  }
}

class KafkaDeadLetters implements DeadLetterSink {
  constructor(private readonly publisher: KafkaDeadLetterPublisher) {}
  publish(letters: Parameters<DeadLetterSink['publish']>[0]): Promise<void> {
    return this.publisher.publish(letters);
  }
}

/**
 * Starts the ingest stage: restores histories, opens ClickHouse, and consumes the interactions
 * and catalog topics (or in-process batches) until stopped.
 */
export async function startIngest(options: RunIngestOptions): Promise<IngestRuntime> {
  const { config } = options;
  const ingest = config.ingest;
  const instrumentation = options.instrumentation ?? new Instrumentation();
  const metrics = new IngestMetrics();
  metrics.attach(instrumentation);
  const usesKafka = options.batches === undefined;
  const kafka: Kafka | undefined = usesKafka || ingest.historyStore === 'changelog' ? createKafka(config.kafka, 'ingest') : undefined;

  if (usesKafka && kafka) await ensureTopics(kafka, [ingest.topics.interactions, ingest.topics.catalog]);
  let store: HistoryStore;
  if (ingest.historyStore === 'changelog' && kafka) {
    store = new ChangelogHistoryStore({
      kafka,
      topic: ingest.topics.changelog,
      groupPrefix: `${ingest.groupId}-changelog`,
      compression: ingest.changelogCompression === 'gzip' ? CompressionTypes.GZIP : CompressionTypes.None,
      ...(ingest.changelogWriter === 'worker' ? { writer: new WorkerProducer(config.kafka, 'ingest-changelog') } : {}),
    });
    if (usesKafka) await ensureChangelogTopic(kafka, ingest.topics.changelog, ingest.topics.interactions);
    const started = Date.now();
    const stats = await store.restore();
    instrumentation.emit('ingest.restore_end', { records: stats.records, users: stats.users, invalid: stats.invalid, durationMs: Date.now() - started });
  } else {
    store = new MemoryHistoryStore();
  }

  const clickhouse = ingest.archive ? await openClickHouse(config.clickhouse) : undefined;
  const archive = clickhouse ? new IngestArchive(clickhouse) : undefined;
  let producer: Producer | undefined;
  const sinks: DeadLetterSink[] = [];
  if (archive) sinks.push(new ClickHouseDeadLetters(archive));
  if (usesKafka && kafka) {
    producer = kafka.producer({ allowAutoTopicCreation: true });
    await producer.connect();
    sinks.push(new KafkaDeadLetters(new KafkaDeadLetterPublisher(producer, ingest.topics.deadLetterSuffix)));
  }

  const lagRows = clickhouse && usesKafka && ingest.lagRows ? new LagRows(clickhouse, ingest.groupId) : undefined;
  const source: EventSource = usesKafka
    ? new KafkaSource({
        kafka: kafka as Kafka,
        groupId: ingest.groupId,
        topics: [ingest.topics.interactions, ingest.topics.catalog],
        fromBeginning: ingest.fromBeginning,
        consumer: ingest.consumer,
        instrumentation,
        onLag: (topic, partition, lag) => {
          processor.reportLag(topic, partition, lag);
          lagRows?.add(topic, partition, lag);
        },
      })
    : new InProcessSource(options.batches as Iterable<RawBatch>);
  const processor = new IngestProcessor({ config: ingest, store, archive, deadLetters: sinks, commit: (o) => source.commit(o), instrumentation });
  processor.startTimer();
  instrumentation.on('ingest.retention_gap', (gap) => processor.reportLost(gap.messages));

  let firstJoin = true;
  const onAssignment = async (changes: Assignment[]): Promise<void> => {
    for (const c of changes) {
      if (c.revoked.length > 0) await processor.dropPartitions(c.topic, c.revoked);
      // Partitions gained after the first join may have been changed by another member: reload them.
      if (!firstJoin && c.topic === ingest.topics.interactions && c.assigned.length > 0) await store.restore(c.assigned);
    }
    firstJoin = false;
  };

  let lastBatchAt = Date.now();
  let idleTimer: NodeJS.Timeout | undefined;
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (idleTimer) clearInterval(idleTimer);
      await source.stop();
      await processor.close();
      if (source instanceof KafkaSource) await source.disconnect();
      await producer?.disconnect();
      await store.close();
      await lagRows?.close();
      await clickhouse?.close();
      log.info({ totals: processor.totals }, 'ingest stopped');
    })();
    return stopping;
  };

  const running = source.run(async (batch) => {
    lastBatchAt = Date.now();
    await processor.process(batch);
  }, onAssignment);
  if (options.idleExitMs !== undefined) {
    // Idle means: consuming (joined to the group, or in-process), no batch for idleExitMs, and no
    // message behind any owned partition as the broker's high-water marks say (a partition that
    // stopped delivering batches is not idle).
    const idle = options.idleExitMs;
    idleTimer = setInterval(() => {
      const joinedAt = source instanceof KafkaSource ? source.joinedAt : 0;
      // A Kafka source is not idle before its lag was measured once (a lag check after the join).
      const behind = processor.consumerLag() ?? (source instanceof KafkaSource ? undefined : 0);
      if (joinedAt !== undefined && behind === 0 && Date.now() - Math.max(lastBatchAt, joinedAt) >= idle) void stop();
    }, Math.min(1000, idle));
  }
  const done = (async () => {
    try {
      await running;
    } catch (error) {
      log.error({ err: error }, 'ingest source failed');
      await stop().catch(() => undefined);
      throw error;
    }
    await stop();
  })();
  // The failure is logged above and `done` still rejects for whoever awaits it; this only keeps
  // a runtime nobody awaits (a test that failed early) from raising an unhandled rejection later.
  done.catch(() => undefined);
  metrics.trackUsers(() => store.size);
  if (source instanceof KafkaSource) metrics.trackRestarts(() => source.restarts);
  return { processor, metrics, store, source, clickhouse, instrumentation, done, stop };
}
