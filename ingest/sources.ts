import type { Admin, Consumer, Kafka } from 'kafkajs';
import { KafkaError, StreamrecError } from '../errors';
import type { Instrumentation } from '../instrumentation';
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
  /**
   * Receives `ingest.fetch_end`, `ingest.partition_lag` (after each batch, and from the broker's
   * watermarks every `lagCheckMs`), `ingest.retention_gap`, `ingest.partition_stalled` and
   * `ingest.assignment`.
   */
  readonly instrumentation?: Instrumentation;
  /** A partition's lag from the broker's high-water mark (every `lagCheckMs`; see {@link KafkaSource}). */
  readonly onLag?: (topic: string, partition: number, lag: number) => void;
}

/** Where consumption of one owned partition stands, as the lag monitor sees it. */
interface PartitionPosition {
  /** The next offset to consume (after the last handled batch, else the committed offset); undefined until known. */
  next: number | undefined;
  /** When `next` last moved (or the partition was assigned). */
  movedAt: number;
  /** Set once a stall was reported, until `next` moves. */
  stallReported: boolean;
}

/**
 * A kafkajs consumer group with `eachBatch`: per-partition order is kept, offsets are resolved
 * as batches are applied in memory (so fetching goes on) but committed only through `commit`,
 * after their effects are durable (autoCommit off).
 *
 * How `run` ends: it resolves once `disconnect` has run (the graceful path: `stop`, final flush
 * and commit, `disconnect`), and only then; it rejects when the consumer crashes for good: with the
 * handler's error when a batch handler failed (handler failures are final: the batch is not
 * retried and the consumer is not restarted), or with a KafkaError naming the group and topics
 * when kafkajs gave up on the broker (an error it does not retry, such as the broker refusing the
 * group). A crash kafkajs recovers from (a retriable error, retries exhausted) restarts the
 * consumer and `run` goes on; the batches since the last commit are redelivered, which ingest
 * recognises. kafkajs handles a crash by stopping the consumer (STOP: its group is dropped),
 * disconnecting (DISCONNECT) and only then reporting it (CRASH, with whether it restarts), so
 * STOP and DISCONNECT alone say nothing about why the consumer stopped: `run` ignores them.
 */
export class KafkaSource implements EventSource {
  readonly name = 'kafka';
  private consumer: Consumer | undefined;
  private stopping = false;
  /** Set by `disconnect`: kafkajs must not revive the consumer after it (a crash racing the disconnect). */
  private disconnecting = false;
  /**
   * True while the consumer is a member of its group: from a join until kafkajs stops the consumer
   * (on a crash, or in `disconnect`); `pause` and `commitOffsets` need one.
   */
  private running = false;
  private crashed = false;
  private handlerFailure: unknown;
  private finished: (() => void) | undefined;
  private owned = new Map<string, Set<number>>();
  /** When the consumer last joined its group (undefined until it has). */
  joinedAt: number | undefined;
  /** Crashes kafkajs recovered from by restarting the consumer (broker unreachable past the retries). */
  restarts = 0;
  private readonly positions = new Map<string, PartitionPosition>();
  /**
   * The group's committed offsets read before this consumer joined (undefined after its first
   * join): kafkajs resets a committed offset the broker no longer has to the log start, and
   * commits that, so a later read would hide the messages deleted in between.
   */
  private committedAtStart: Map<string, number> | undefined;
  private admin: Promise<Admin> | undefined;
  private monitor: NodeJS.Timeout | undefined;
  private checking: Promise<void> | undefined;

  constructor(private readonly options: KafkaSourceOptions) {}

  async run(handler: BatchHandler, onAssignment?: (changes: Assignment[]) => Promise<void>): Promise<void> {
    const { kafka, groupId, topics, instrumentation } = this.options;
    const consumer = kafka.consumer({
      groupId,
      maxBytesPerPartition: this.options.consumer.maxBytesPerPartition,
      sessionTimeout: this.options.consumer.sessionTimeoutMs,
      rebalanceTimeout: this.options.consumer.rebalanceTimeoutMs,
      heartbeatInterval: this.options.consumer.heartbeatIntervalMs,
      maxBytes: this.options.consumer.maxBytes,
      maxWaitTimeInMs: this.options.consumer.maxWaitMs,
      retry: {
        retries: this.options.consumer.retries,
        initialRetryTime: this.options.consumer.retryInitialMs,
        // kafkajs asks only about retriable crashes. A handler failure is final, and a consumer
        // being disconnected is not restarted (kafkajs would rejoin the group after `disconnect`).
        restartOnFailure: async () => this.handlerFailure === undefined && !this.disconnecting,
      },
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
      // A partition's position is its commit: as read before the first join, re-read after a rejoin.
      this.positions.clear();
      for (const [topic, parts] of now) {
        for (const partition of parts) {
          const committed = this.committedAtStart?.get(`${topic}/${partition}`);
          this.positions.set(`${topic}/${partition}`, { next: committed !== undefined && committed >= 0 ? committed : undefined, movedAt: Date.now(), stallReported: false });
        }
      }
      this.committedAtStart = undefined;
      this.running = true;
      const changed = changes.filter((c) => c.assigned.length > 0 || c.revoked.length > 0);
      pendingChanges.push(...changed);
      for (const c of changed) instrumentation?.emit('ingest.assignment', c);
      log.info({ groupId, assignment: payload.memberAssignment }, 'joined consumer group');
    });
    // A batch of only transaction markers (or aborted messages) never reaches the handler; kafkajs
    // resolves past it and says so here (no messages): the position moves, or the lag would never
    // reach 0 behind a transactional producer's last commit marker.
    consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
      if (payload.batchSize === 0) this.moved(payload.topic, payload.partition, Number(payload.lastOffset) + 1);
    });
    // kafkajs passes the node id as a string here, whatever its types say.
    consumer.on(consumer.events.FETCH, ({ payload }) => instrumentation?.emit('ingest.fetch_end', { broker: Number(payload.nodeId), durationMs: payload.duration }));
    // kafkajs drops the consumer group when it stops the consumer, before it reports a crash: from
    // STOP on there is nothing to pause and no member to commit for. STOP does not end `run`.
    consumer.on(consumer.events.STOP, () => {
      this.running = false;
    });
    const ended = new Promise<void>((resolve, reject) => {
      this.finished = resolve;
      consumer.on(consumer.events.CRASH, ({ payload }) => {
        this.running = false;
        if (payload.restart) {
          this.restarts++;
          log.warn({ err: payload.error, groupId }, 'consumer crashed; kafkajs restarts it and the batches since the last commit are redelivered');
          return;
        }
        this.crashed = true;
        if (this.disconnecting && this.handlerFailure === undefined) {
          // A crash that raced `disconnect` (not restarted, see restartOnFailure): the stop was
          // asked for, so `run` resolves when `disconnect` returns.
          log.warn({ err: payload.error, groupId }, 'consumer crashed while disconnecting');
          return;
        }
        reject(this.handlerFailure ?? finalCrash(payload.error, groupId, topics));
      });
    });
    // A crash while joining (inside `consumer.run` below) rejects `ended` before it is awaited.
    ended.catch(() => undefined);
    this.committedAtStart = await this.committedOffsets().catch((error: unknown) => {
      log.warn({ err: (error as Error).message }, 'could not read the group\'s committed offsets before joining: messages deleted before this start may go unreported');
      return undefined;
    });
    await consumer.connect();
    for (const topic of topics) await consumer.subscribe({ topic, fromBeginning: this.options.fromBeginning });
    this.startMonitor();
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: 1,
      eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
        // After a handler failure no batch is handled again (batches of other partitions may
        // still be in flight until kafkajs has stopped).
        if (this.handlerFailure !== undefined) return;
        const lastOffset = batch.lastOffset();
        // batch.offsetLag() without its Long arithmetic (offsets stay below 2^53).
        const lag = Number(batch.highWatermark) - 1 - Number(lastOffset);
        try {
          if (pendingChanges.length > 0 && onAssignment) {
            const changes = pendingChanges;
            pendingChanges = [];
            await onAssignment(changes);
          }
          if (this.stopping || !isRunning() || isStale() || batch.messages.length === 0) return;
          await this.checkGap(batch.topic, batch.partition, Number(batch.firstOffset()));
          await handler({ topic: batch.topic, partition: batch.partition, messages: batch.messages, lag });
          this.moved(batch.topic, batch.partition, Number(lastOffset) + 1);
        } catch (error) {
          // Final: kafkajs must neither retry the batch nor restart the consumer.
          this.handlerFailure ??= error;
          throw new StreamrecError(`batch handler failed on ${batch.topic}/${batch.partition}: ${(error as Error).message}`, {
            cause: error,
            retriable: false,
            context: { topic: batch.topic, partition: batch.partition, offset: batch.firstOffset() ?? '' },
          });
        }
        resolveOffset(lastOffset);
        instrumentation?.emit('ingest.partition_lag', { topic: batch.topic, partition: batch.partition, lag });
        await heartbeat();
      },
    });
    await ended;
  }

  private moved(topic: string, partition: number, next: number): void {
    const p = this.positions.get(`${topic}/${partition}`);
    if (!p) return;
    if (p.next !== next) {
      p.next = next;
      p.movedAt = Date.now();
      p.stallReported = false;
    }
  }

  /**
   * A batch that starts past the partition's next offset: if the broker's log now starts past it
   * too, the messages between were deleted (retention, a size limit) before they were read. They
   * are reported, never silently skipped. (A gap the log start does not explain is a compacted
   * topic's or a transaction marker's, and is not a loss.)
   */
  private async checkGap(topic: string, partition: number, first: number): Promise<void> {
    const next = this.positions.get(`${topic}/${partition}`)?.next;
    if (next === undefined || first <= next) return;
    try {
      const offsets = await (await this.adminClient()).fetchTopicOffsets(topic);
      const low = Number(offsets.find((o) => o.partition === partition)?.low ?? 0);
      if (low > next) this.reportGap(topic, partition, next, Math.min(low, first));
    } catch (error) {
      log.warn({ topic, partition, err: (error as Error).message }, 'could not read the log start to explain a gap in offsets');
    }
  }

  private reportGap(topic: string, partition: number, from: number, to: number): void {
    const messages = to - from;
    log.error(
      { topic, partition, fromOffset: from, toOffset: to - 1, messages },
      'messages were deleted by the broker (retention, or the partition\'s size limit) before ingest read them: they are neither archived nor dead-lettered',
    );
    this.options.instrumentation?.emit('ingest.retention_gap', { topic, partition, fromOffset: from, toOffset: to - 1, messages });
    this.moved(topic, partition, to);
  }

  /** The admin client of the lag checks, connected on first use (a failed connect is tried again next time). */
  private adminClient(): Promise<Admin> {
    this.admin ??= (async () => {
      const admin = this.options.kafka.admin();
      try {
        await admin.connect();
        return admin;
      } catch (error) {
        this.admin = undefined;
        throw error;
      }
    })();
    return this.admin;
  }

  /**
   * Every `lagCheckMs`: each owned partition's lag from the broker's high-water mark (so a partition
   * that stopped delivering batches still shows what is behind it), messages the broker deleted
   * before they were read (`ingest.retention_gap`), and partitions with messages behind that have not
   * moved for `stallWarnMs` (`ingest.partition_stalled`).
   */
  private startMonitor(): void {
    const { lagCheckMs } = this.options.consumer;
    this.monitor ??= setInterval(() => {
      if (this.checking || !this.running || this.stopping) return;
      this.checking = this.checkLag()
        .catch((error: unknown) => log.warn({ err: (error as Error).message }, 'lag check failed; retried at the next interval'))
        .finally(() => (this.checking = undefined));
    }, lagCheckMs);
    this.monitor.unref();
  }

  /** The group's committed offset per topic-partition (-1: none). */
  private async committedOffsets(): Promise<Map<string, number>> {
    const { groupId, topics } = this.options;
    const committed = new Map<string, number>();
    for (const t of await (await this.adminClient()).fetchOffsets({ groupId, topics: [...topics] })) {
      for (const p of t.partitions) committed.set(`${t.topic}/${p.partition}`, Number(p.offset));
    }
    return committed;
  }

  private async checkLag(): Promise<void> {
    const { topics, fromBeginning, consumer, instrumentation, onLag } = this.options;
    const admin = await this.adminClient();
    const unknown = [...this.positions.values()].some((p) => p.next === undefined);
    const committed = unknown ? await this.committedOffsets() : new Map<string, number>();
    for (const topic of topics) {
      const offsets = await admin.fetchTopicOffsets(topic);
      for (const o of offsets) {
        const key = `${topic}/${o.partition}`;
        const position = this.positions.get(key);
        if (!position) continue; // not this process's partition
        const high = Number(o.high);
        const low = Number(o.low);
        if (position.next === undefined) {
          const commit = committed.get(key);
          position.next = commit !== undefined && commit >= 0 ? commit : fromBeginning ? low : high;
        }
        if (low > position.next) this.reportGap(topic, o.partition, position.next, low);
        const lag = Math.max(0, high - position.next);
        onLag?.(topic, o.partition, lag);
        instrumentation?.emit('ingest.partition_lag', { topic, partition: o.partition, lag });
        const still = Date.now() - position.movedAt;
        if (lag > 0 && still >= consumer.stallWarnMs && !position.stallReported) {
          position.stallReported = true;
          log.warn({ topic, partition: o.partition, nextOffset: position.next, lag, stillMs: still }, 'partition stalled: messages are behind it and it has not moved');
          instrumentation?.emit('ingest.partition_stalled', { topic, partition: o.partition, nextOffset: position.next, lag, stillMs: still });
        }
      }
    }
  }

  /**
   * Commits offsets. A commit refused because the group is rebalancing is logged, not fatal: the
   * partitions' effects are durable, and their owner after the rebalance replays from the last
   * accepted commit, recognising what was applied (at-least-once with idempotent application).
   */
  async commit(offsets: CommitOffset[]): Promise<void> {
    if (!this.consumer || offsets.length === 0) return;
    if (!this.running) {
      // Crashed (and maybe restarting): there is no group member to commit for. The effects are
      // durable, so the partitions are replayed from the last accepted commit and recognised.
      log.warn({ offsets, crashed: this.crashed }, 'offset commit skipped: the consumer is not in its group');
      return;
    }
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

  /**
   * Stops fetching; the batch in flight finishes first. Call `disconnect` after the final commit.
   * Safe to call again, and after a crash.
   */
  async stop(): Promise<void> {
    this.stopping = true;
    // A consumer kafkajs has stopped (crashed, restarting) has no group to pause (kafkajs would
    // throw); it fetches nothing, and a restarted one hands no batch to the handler while stopping.
    if (!this.consumer || !this.running) return;
    this.consumer.pause(this.options.topics.map((topic) => ({ topic })));
  }

  /** Leaves the group and closes the connections; `run` resolves unless it already rejected. */
  async disconnect(): Promise<void> {
    this.disconnecting = true;
    if (this.monitor) clearInterval(this.monitor);
    this.monitor = undefined;
    try {
      await this.checking;
      await this.admin?.then((admin) => admin.disconnect()).catch(() => undefined);
      await this.consumer?.disconnect();
    } finally {
      // Stopped as asked, even when closing a connection failed (that error is this call's).
      this.running = false;
      this.finished?.();
    }
  }
}

/** The error `run` rejects with when kafkajs gives up on the consumer for good. */
function finalCrash(error: Error, groupId: string, topics: readonly string[]): KafkaError {
  // kafkajs wraps the broker's error (KafkaJSNonRetriableError, KafkaJSNumberOfRetriesExceeded).
  let cause: unknown = error;
  while (cause instanceof Error && cause.cause instanceof Error) cause = cause.cause;
  const type = (cause as { type?: unknown }).type;
  const what = typeof type === 'string' ? `${type}: ${error.message}` : error.message;
  return new KafkaError(`kafka consumer of group ${groupId} on ${topics.join(', ')} crashed and kafkajs does not restart it (${what})`, {
    cause: error,
    retriable: false,
    context: { groupId, topic: topics.join(','), ...(typeof type === 'string' ? { type } : {}) },
  });
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
