import { randomUUID } from 'node:crypto';
import { CompressionTypes, type Kafka, type KafkaMessage } from 'kafkajs';
import { ConfigError, KafkaError } from '../../errors';
import { createLogger } from '../../logging';
import { UserHistory } from '../../schemas/history';
import { InlineRecordWriter, type RecordWriter, type WorkerRecord } from '../kafka/workerProducer';
import { BaseHistoryStore, type PreparedHistories, type RestoreStats } from './store';

const log = createLogger('infra.history.changelog');

export interface ChangelogOptions {
  readonly kafka: Kafka;
  readonly topic: string;
  /** Prefix of the throwaway consumer groups used to read the changelog. */
  readonly groupPrefix?: string;
  /** Compress changelog batches (histories compress well). Default gzip. */
  readonly compression?: CompressionTypes;
  /**
   * Writes the records; default a kafkajs producer on this thread. A `WorkerProducer` moves the
   * record encoding to a worker thread (the store closes the writer it is given).
   */
  readonly writer?: RecordWriter;
}

/**
 * Decodes one changelog record: a tombstone (null value) deletes the user; an invalid value is
 * reported and skipped (`undefined`).
 */
export function decodeChangelogRecord(message: KafkaMessage, where: string): UserHistory | null | undefined {
  if (message.value === null) return null;
  try {
    const parsed = UserHistory.safeParse(JSON.parse(message.value.toString('utf8')));
    if (parsed.success) return parsed.data;
    log.error({ where, issue: parsed.error.issues[0] }, 'invalid history record in changelog, skipped');
  } catch (error) {
    log.error({ where, err: (error as Error).message }, 'changelog record is not JSON, skipped');
  }
  return undefined;
}

/** Sum of a history's applied source offsets: it only grows as events are applied. */
function progress(h: UserHistory): number {
  let sum = 0;
  for (const offset of Object.values(h.offsets)) sum += offset;
  return sum;
}

/**
 * True when `candidate` reflects less of the source than `current`. A record written late by a
 * process that has just lost the user's partition in a rebalance (its flush was in flight) must
 * not replace the newer state its new owner wrote; applied offsets only grow, so the record that
 * has applied more wins, and equal progress goes to the later record.
 */
export function isStale(candidate: UserHistory, current: UserHistory | undefined): boolean {
  return current !== undefined && progress(candidate) < progress(current);
}

/**
 * The end (high watermark) of every partition of `topic` that holds records, taken now; empty
 * when the topic does not exist.
 */
export async function topicEnds(kafka: Kafka, topic: string): Promise<Map<number, number>> {
  const admin = kafka.admin();
  await admin.connect();
  let offsets: Array<{ partition: number; high: string; low: string }>;
  try {
    offsets = await admin.fetchTopicOffsets(topic);
  } catch (error) {
    if ((error as { type?: string }).type === 'UNKNOWN_TOPIC_OR_PARTITION') return new Map();
    throw new KafkaError(`cannot read the offsets of ${topic}`, { cause: error, retriable: true, context: { topic } });
  } finally {
    await admin.disconnect();
  }
  return new Map(offsets.filter((p) => Number(p.high) > Number(p.low)).map((p) => [p.partition, Number(p.high)]));
}

/**
 * Reads `topic` from the beginning up to the high watermarks taken at the start, for the given
 * partitions (default: all), calling `onRecord` for each record. Uses a throwaway consumer group
 * (no commits).
 */
export async function readTopicToEnd(
  kafka: Kafka,
  topic: string,
  onRecord: (message: KafkaMessage, partition: number) => void,
  options: { partitions?: readonly number[]; groupPrefix?: string } = {},
): Promise<number> {
  const ends = await topicEnds(kafka, topic);
  const wanted = options.partitions ? new Set(options.partitions) : undefined;
  const remaining = new Map<number, number>();
  for (const [partition, end] of ends) if (wanted === undefined || wanted.has(partition)) remaining.set(partition, end);
  if (remaining.size === 0) return 0;

  let count = 0;
  const consumer = kafka.consumer({ groupId: `${options.groupPrefix ?? 'streamrec'}-read-${randomUUID()}`, maxWaitTimeInMs: 100 });
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      consumer
        .run({
          autoCommit: false,
          eachBatch: async ({ batch }) => {
            const end = remaining.get(batch.partition);
            if (end === undefined) return;
            for (const m of batch.messages) {
              if (Number(m.offset) >= end) break;
              onRecord(m, batch.partition);
              count++;
            }
            if (Number(batch.lastOffset()) + 1 >= end) {
              remaining.delete(batch.partition);
              if (remaining.size === 0) resolve();
            }
          },
        })
        .catch(reject);
    });
  } finally {
    await consumer.disconnect();
  }
  return count;
}

/**
 * Histories backed by a changelog topic (key = userId, value = the history as JSON), as in Kafka
 * Streams: `flush` writes one record per user changed since the last flush, to the changelog
 * partition equal to the user's source partition (co-partitioning), so a process restores
 * exactly the partitions it owns; `restore` reads them back; serving follows the topic.
 * On real Kafka the topic should be compacted (see `ensureChangelogTopic`).
 */
export class ChangelogHistoryStore extends BaseHistoryStore {
  readonly kind = 'changelog' as const;
  private readonly writer: RecordWriter;

  constructor(private readonly options: ChangelogOptions) {
    super();
    this.writer = options.writer ?? new InlineRecordWriter(options.kafka);
  }

  prepareFlush(): PreparedHistories {
    const messages: WorkerRecord[] = [];
    for (const userId of this.dirty) {
      const h = this.histories.get(userId);
      if (h) messages.push({ key: userId, value: JSON.stringify(h), partition: h.partition });
    }
    this.dirty.clear();
    return {
      count: messages.length,
      write: async () => {
        if (messages.length === 0) return;
        try {
          await this.writer.send(this.options.topic, messages, { compression: this.options.compression ?? CompressionTypes.GZIP });
        } catch (cause) {
          throw new KafkaError(`cannot write ${messages.length} histories to changelog ${this.options.topic}`, {
            cause,
            retriable: true,
            context: { topic: this.options.topic },
          });
        }
      },
    };
  }

  async restore(partitions?: readonly number[]): Promise<RestoreStats> {
    const started = Date.now();
    let invalid = 0;
    const users = new Set<string>();
    if (partitions) this.dropPartitions(partitions);
    else {
      this.histories.clear();
      this.dirty.clear();
    }
    const records = await readTopicToEnd(
      this.options.kafka,
      this.options.topic,
      (message, partition) => {
        const userId = message.key?.toString('utf8');
        if (!userId) {
          invalid++;
          return;
        }
        const h = decodeChangelogRecord(message, `${this.options.topic}/${partition}@${message.offset}`);
        if (h === undefined) invalid++;
        else if (h === null) this.histories.delete(userId);
        else if (!isStale(h, this.histories.get(userId))) this.hold(h, userId);
        users.add(userId);
      },
      { ...(partitions ? { partitions } : {}), groupPrefix: this.options.groupPrefix ?? 'streamrec-history' },
    );
    const stats = { records, users: users.size, invalid, ms: Date.now() - started };
    log.info({ topic: this.options.topic, partitions, ...stats }, 'histories restored from changelog');
    return stats;
  }

  async close(): Promise<void> {
    await this.writer.close();
  }
}

/**
 * Creates the changelog topic compacted with as many partitions as the source topic, where the
 * cluster allows admin requests, and checks co-partitioning either way.
 */
export async function ensureChangelogTopic(kafka: Kafka, changelog: string, source: string): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const sourceMeta = await admin.fetchTopicMetadata({ topics: [source] });
    const sourcePartitions = sourceMeta.topics[0]?.partitions.length ?? 0;
    try {
      await admin.createTopics({
        topics: [{ topic: changelog, numPartitions: Math.max(1, sourcePartitions), configEntries: [{ name: 'cleanup.policy', value: 'compact' }] }],
        waitForLeaders: true,
      });
    } catch (error) {
      // Brokers without admin support (librdkafka's mock) auto-create topics instead.
      log.debug({ err: (error as Error).message }, 'createTopics not available; relying on auto-creation');
    }
    const changelogMeta = await admin.fetchTopicMetadata({ topics: [changelog] });
    const changelogPartitions = changelogMeta.topics[0]?.partitions.length ?? 0;
    if (changelogPartitions < sourcePartitions) {
      throw new ConfigError(
        `changelog topic ${changelog} has ${changelogPartitions} partitions but source topic ${source} has ${sourcePartitions}; ` +
          `create it (cleanup.policy=compact) with at least ${sourcePartitions} partitions`,
        { context: { topic: changelog } },
      );
    }
  } finally {
    await admin.disconnect();
  }
}

/**
 * Makes sure topics exist before a consumer subscribes to them: creates them where the cluster
 * allows admin requests, and otherwise asks for their metadata, which auto-creates them on
 * brokers that allow it (librdkafka's mock).
 */
export async function ensureTopics(kafka: Kafka, topics: readonly string[], numPartitions = 4): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const missing = topics.filter((t) => !existing.has(t));
    if (missing.length === 0) return;
    try {
      await admin.createTopics({ topics: missing.map((topic) => ({ topic, numPartitions })), waitForLeaders: true });
    } catch (error) {
      log.debug({ err: (error as Error).message }, 'createTopics not available; relying on auto-creation');
    }
    await admin.fetchTopicMetadata({ topics: missing });
  } finally {
    await admin.disconnect();
  }
}

export interface FollowOptions {
  /** Called for every record that changes a user: the history, or null for a tombstone. */
  readonly onHistory: (userId: string, history: UserHistory | null) => void;
  /** The caller's current history of a user (for the stale check); default a map the follower keeps. */
  readonly current?: (userId: string) => UserHistory | undefined;
  /** Called after each batch with the next offset to read of its partition (progress, catch-up). */
  readonly onProgress?: (partition: number, nextOffset: number) => void;
}

/**
 * Follows a changelog continuously (for serving or other readers) from the beginning: passes
 * every record to `onHistory` as it arrives, except invalid and stale ones (see {@link isStale}).
 * Returns a handle to stop following.
 */
export async function followChangelog(kafka: Kafka, topic: string, options: FollowOptions): Promise<{ stop(): Promise<void> }> {
  const consumer = kafka.consumer({ groupId: `streamrec-follow-${randomUUID()}`, maxWaitTimeInMs: 100 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const own = options.current ? undefined : new Map<string, UserHistory>();
  const current = options.current ?? ((userId: string) => own?.get(userId));
  await consumer.run({
    autoCommit: false,
    eachBatch: async ({ batch }) => {
      for (const m of batch.messages) {
        const userId = m.key?.toString('utf8');
        if (!userId) continue;
        const h = decodeChangelogRecord(m, `${topic}/${batch.partition}@${m.offset}`);
        if (h === undefined || (h !== null && isStale(h, current(userId)))) continue;
        if (h === null) own?.delete(userId);
        else own?.set(userId, h);
        options.onHistory(userId, h);
      }
      // lastOffset counts records kafkajs filtered out (control records) too, as readTopicToEnd does.
      options.onProgress?.(batch.partition, Number(batch.lastOffset()) + 1);
    },
  });
  return { stop: () => consumer.disconnect() };
}
