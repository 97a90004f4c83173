import type { Consumer, Kafka } from 'kafkajs';
import { KafkaError } from '../errors';
import { createLogger } from '../logging';
import type { ConsumerConfig } from '../schemas/config';
import type { CommitOffset } from './processor';
import type { RawBatch } from './types';

const log = createLogger('ingest.source');

const REBALANCE_ERRORS = new Set(['REBALANCE_IN_PROGRESS', 'ILLEGAL_GENERATION', 'UNKNOWN_MEMBER_ID', 'NOT_COORDINATOR']);

/** Called for every batch; resolves when the batch's in-memory effects are applied. */
export type BatchHandler = (batch: RawBatch) => Promise<void>;

/** Partitions owned by this process changed (a consumer-group rebalance). */
export interface Assignment {
  readonly topic: string;
  readonly assigned: number[];
  readonly revoked: number[];
}

/**
 * Where raw events come from. `run` delivers batches (one topic-partition each, in offset
 * order) until `stop`; `commit` records the next offsets to read once effects are durable.
 */
export interface EventSource {
  readonly name: string;
  run(handler: BatchHandler, onAssignment?: (changes: Assignment[]) => Promise<void>): Promise<void>;
  commit(offsets: CommitOffset[]): Promise<void>;
  stop(): Promise<void>;
}

export interface KafkaSourceOptions {
  readonly kafka: Kafka;
  readonly groupId: string;
  readonly topics: readonly string[];
  readonly fromBeginning: boolean;
  readonly consumer: ConsumerConfig;
}

/**
 * A kafkajs consumer group with `eachBatch`: per-partition order is kept, offsets are resolved
 * as batches are applied in memory (so fetching goes on) but committed only through `commit`,
 * after their effects are durable (autoCommit off).
 */
export class KafkaSource implements EventSource {
  readonly name = 'kafka';
  private consumer: Consumer | undefined;
  private stopping = false;
  private owned = new Map<string, Set<number>>();
  /** When the consumer last joined its group (undefined until it has). */
  joinedAt: number | undefined;

  constructor(private readonly options: KafkaSourceOptions) {}

  async run(handler: BatchHandler, onAssignment?: (changes: Assignment[]) => Promise<void>): Promise<void> {
    const { kafka, groupId, topics } = this.options;
    const consumer = kafka.consumer({
      groupId,
      maxBytesPerPartition: this.options.consumer.maxBytesPerPartition,
      sessionTimeout: this.options.consumer.sessionTimeoutMs,
      rebalanceTimeout: this.options.consumer.rebalanceTimeoutMs,
      heartbeatInterval: this.options.consumer.heartbeatIntervalMs,
      maxBytes: 32 * 1024 * 1024,
      maxWaitTimeInMs: 200,
      retry: { retries: 5 },
    });
    this.consumer = consumer;
    let pendingChanges: Assignment[] = [];
    consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
      const now = new Map<string, Set<number>>(Object.entries(payload.memberAssignment).map(([t, ps]) => [t, new Set(ps)]));
      const changes: Assignment[] = [];
      for (const topic of new Set([...now.keys(), ...this.owned.keys()])) {
        const before = this.owned.get(topic) ?? new Set<number>();
        const after = now.get(topic) ?? new Set<number>();
        changes.push({ topic, assigned: [...after].filter((p) => !before.has(p)), revoked: [...before].filter((p) => !after.has(p)) });
      }
      this.owned = now;
      this.joinedAt = Date.now();
      pendingChanges.push(...changes.filter((c) => c.assigned.length > 0 || c.revoked.length > 0));
      log.info({ groupId, assignment: payload.memberAssignment }, 'joined consumer group');
    });
    const crashed = new Promise<never>((_, reject) => {
      consumer.on(consumer.events.CRASH, ({ payload }) => {
        if (!payload.restart) reject(new KafkaError(`consumer crashed: ${payload.error.message}`, { cause: payload.error, context: { groupId } }));
      });
    });
    await consumer.connect();
    for (const topic of topics) await consumer.subscribe({ topic, fromBeginning: this.options.fromBeginning });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: 1,
      eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
        if (pendingChanges.length > 0 && onAssignment) {
          const changes = pendingChanges;
          pendingChanges = [];
          await onAssignment(changes);
        }
        if (this.stopping || !isRunning() || isStale() || batch.messages.length === 0) return;
        await handler({ topic: batch.topic, partition: batch.partition, messages: batch.messages });
        resolveOffset(batch.lastOffset());
        await heartbeat();
      },
    });
    await Promise.race([crashed, new Promise<void>((resolve) => consumer.on(consumer.events.STOP, () => resolve()))]);
  }

  /**
   * Commits offsets. A commit refused because the group is rebalancing is logged, not fatal: the
   * partitions' effects are durable, and their owner after the rebalance replays from the last
   * accepted commit, recognising what was applied (at-least-once with idempotent application).
   */
  async commit(offsets: CommitOffset[]): Promise<void> {
    if (!this.consumer || offsets.length === 0) return;
    try {
      await this.consumer.commitOffsets(offsets.map((o) => ({ topic: o.topic, partition: o.partition, offset: o.offset })));
    } catch (error) {
      const type = (error as { type?: string }).type ?? (error as { cause?: { type?: string } }).cause?.type;
      if (type && REBALANCE_ERRORS.has(type)) {
        log.warn({ type, offsets }, 'offset commit refused during a rebalance; the partitions\' next owner replays from the last commit');
        return;
      }
      throw new KafkaError(`offset commit failed: ${(error as Error).message}`, { cause: error, retriable: true });
    }
  }

  /** Stops fetching; the batch in flight finishes first. Call `disconnect` after the final commit. */
  async stop(): Promise<void> {
    this.stopping = true;
    if (!this.consumer) return;
    this.consumer.pause(this.options.topics.map((topic) => ({ topic })));
  }

  async disconnect(): Promise<void> {
    await this.consumer?.disconnect();
  }
}

/**
 * Batches already in memory (a dataset replay in the demo): delivered in order; commits are
 * recorded for inspection.
 */
export class InProcessSource implements EventSource {
  readonly name = 'in-process';
  readonly committed = new Map<string, string>();
  private stopped = false;

  constructor(private readonly batches: Iterable<RawBatch> | AsyncIterable<RawBatch>) {}

  async run(handler: BatchHandler): Promise<void> {
    for await (const batch of this.batches) {
      if (this.stopped) break;
      await handler(batch);
    }
  }

  async commit(offsets: CommitOffset[]): Promise<void> {
    for (const o of offsets) this.committed.set(`${o.topic}/${o.partition}`, o.offset);
  }

  async stop(): Promise<void> {
    this.stopped = true;
  }
}
