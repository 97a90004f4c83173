import type { Message, Producer } from 'kafkajs';
import { ConfigError } from '../errors';
import { sendChunked } from '../infra/kafka';
import { sleep } from '../infra/retry';
import type { TopicsConfig } from '../schemas/config';
import type { ReplayEvent } from '../datasets';
import type { RawBatch, RawMessage } from './types';

/**
 * Replay speed: `max` (as fast as possible) or a factor applied to event time (`3600` = one hour
 * of event time per second of wall time).
 */
export type ReplaySpeed = 'max' | { readonly factor: number };

export function parseSpeed(text: string): ReplaySpeed {
  if (text === 'max') return 'max';
  const factor = Number(text.replace(/x$/, ''));
  if (!Number.isFinite(factor) || factor <= 0) {
    throw new ConfigError(`--speed must be "max" or a positive factor such as 3600x, got ${JSON.stringify(text)}`);
  }
  return { factor };
}

export interface ReplayProgress {
  readonly produced: number;
  readonly total: number;
}

function toMessage(e: ReplayEvent): Message {
  const m = encodeReplayEvent(e);
  return { key: m.key, value: m.value };
}

/** Waits shorter than this are not worth a pause: the events go out with the next send. */
const MIN_PAUSE_MS = 5;

/**
 * When replayed events are due at a speed factor: the first interaction goes out at once, each
 * later one when the wall clock has moved its event-time distance from the first, divided by the
 * factor. Catalog events and a `max` speed are never held back, nor are events older than one
 * already sent (they go out as soon as they come).
 */
export class ReplayClock {
  private firstTs: number | undefined;
  private startedAt = 0;

  constructor(
    private readonly speed: ReplaySpeed,
    private readonly now: () => number = Date.now,
  ) {}

  /** Milliseconds to wait before `e` is due (0: now). */
  delayOf(e: ReplayEvent): number {
    if (this.speed === 'max' || e.kind !== 'interaction') return 0;
    if (this.firstTs === undefined) {
      this.firstTs = e.event.ts;
      this.startedAt = this.now();
      return 0;
    }
    return Math.max(0, this.startedAt + (e.event.ts - this.firstTs) / this.speed.factor - this.now());
  }
}

/** `events` with at most `limit` interactions (every catalog event before the cut is kept). */
export function* limitInteractions(events: Iterable<ReplayEvent>, limit: number): Generator<ReplayEvent> {
  let n = 0;
  for (const e of events) {
    if (e.kind === 'interaction' && n++ >= limit) return;
    yield e;
  }
}

/** Yielded by {@link pacedEvents} before it pauses: send what is buffered now. */
export const PAUSE = Symbol('replay pause');

export interface PacingOptions {
  /** When events are due. */
  readonly clock: ReplayClock;
  /** Ends the replay, also in the middle of a pause. */
  readonly signal?: AbortSignal;
  /** How to wait (tests pass a fake one); must return early when `signal` aborts. */
  readonly sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/**
 * `events` at the pace of `clock`: before each pause worth taking it yields {@link PAUSE} (so
 * the caller can send what it holds), then waits once the caller asks for the next event.
 * Stops when `signal` aborts.
 */
export async function* pacedEvents(events: Iterable<ReplayEvent>, options: PacingOptions): AsyncGenerator<ReplayEvent | typeof PAUSE> {
  const pause = options.sleep ?? sleep;
  for (const e of events) {
    if (options.signal?.aborted) return;
    if (options.clock.delayOf(e) > MIN_PAUSE_MS) {
      yield PAUSE;
      // Sending what was held took time of its own: wait only for what is left.
      const wait = options.clock.delayOf(e);
      if (wait > 0) await pause(wait, options.signal);
      if (options.signal?.aborted) return;
    }
    yield e;
  }
}

/**
 * Produces dataset events to Kafka: catalog events to the catalog topic (key itemId),
 * interactions to the interactions topic (key userId, so each user stays in one partition and
 * keeps its order). With a speed factor, sends are paced by event time ({@link ReplayClock}).
 */
export async function replayToKafka(options: {
  producer: Producer;
  topics: Pick<TopicsConfig, 'interactions' | 'catalog'>;
  events: Iterable<ReplayEvent>;
  total: number;
  speed: ReplaySpeed;
  batchSize?: number;
  onProgress?: (p: ReplayProgress) => void;
  signal?: AbortSignal;
}): Promise<number> {
  const batchSize = options.batchSize ?? 1000;
  let produced = 0;
  let items: Message[] = [];
  let interactions: Message[] = [];
  const flush = async (): Promise<void> => {
    if (items.length > 0) await sendChunked(options.producer, options.topics.catalog, items);
    if (interactions.length > 0) await sendChunked(options.producer, options.topics.interactions, interactions);
    produced += items.length + interactions.length;
    items = [];
    interactions = [];
    options.onProgress?.({ produced, total: options.total });
  };
  for await (const e of pacedEvents(options.events, { clock: new ReplayClock(options.speed), ...(options.signal ? { signal: options.signal } : {}) })) {
    if (e === PAUSE) {
      await flush();
      continue;
    }
    (e.kind === 'item' ? items : interactions).push(toMessage(e));
    if (items.length + interactions.length >= batchSize) await flush();
  }
  await flush();
  return produced;
}

/** FNV-1a hash of a key, for partitioning in-process replays like a keyed producer does. */
export function partitionOf(key: string, partitions: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % partitions;
}

/** A message ready to publish: which stream it belongs to, its key and bytes. */
export interface EncodedMessage {
  readonly stream: 'catalog' | 'interactions';
  readonly key: string;
  readonly value: Buffer;
}

export function encodeReplayEvent(e: ReplayEvent): EncodedMessage {
  return e.kind === 'item'
    ? { stream: 'catalog', key: e.event.itemId, value: Buffer.from(JSON.stringify(e.event)) }
    : { stream: 'interactions', key: e.event.userId, value: Buffer.from(JSON.stringify(e.event)) };
}

interface ReplayBatchOptions {
  readonly topics: Pick<TopicsConfig, 'interactions' | 'catalog'>;
  /** Partitions per topic (default 4). */
  readonly partitions?: number;
  /** Most messages per batch (default 2000). */
  readonly batchSize?: number;
}

/**
 * Assigns messages to topic-partitions and offsets as a keyed producer and a broker would
 * (partition by key hash, offsets per partition), and groups them into batches of one
 * topic-partition each.
 */
class ReplayPartitioner {
  private readonly partitions: number;
  private readonly batchSize: number;
  private readonly offsets = new Map<string, number>();
  private readonly open = new Map<string, { topic: string; partition: number; messages: RawMessage[] }>();
  /** Messages added since everything was last drained. */
  private sinceDrain = 0;

  constructor(private readonly options: ReplayBatchOptions) {
    this.partitions = options.partitions ?? 4;
    this.batchSize = options.batchSize ?? 2000;
  }

  /** Adds one message; returns the batches ready to go (its own once full, or all; often none). */
  add(m: EncodedMessage): RawBatch[] {
    const topic = m.stream === 'catalog' ? this.options.topics.catalog : this.options.topics.interactions;
    const partition = partitionOf(m.key, this.partitions);
    const id = `${topic}/${partition}`;
    const offset = this.offsets.get(id) ?? 0;
    this.offsets.set(id, offset + 1);
    let batch = this.open.get(id);
    if (!batch) {
      batch = { topic, partition, messages: [] };
      this.open.set(id, batch);
    }
    batch.messages.push({ offset: String(offset), key: Buffer.from(m.key), value: m.value });
    // Everything goes once as many messages came since the last drain as all partitions' batches
    // hold, so that a topic with few messages per partition (the catalog) is not held back
    // until the end, however the other topic's keys fall.
    if (++this.sinceDrain >= this.batchSize * this.partitions) return this.drain();
    if (batch.messages.length < this.batchSize) return [];
    this.open.delete(id);
    return [batch];
  }

  /** Every batch still open (none is empty: a batch opens with its first message). */
  drain(): RawBatch[] {
    const out: RawBatch[] = [...this.open.values()];
    this.open.clear();
    this.sinceDrain = 0;
    return out;
  }
}

/**
 * Turns messages into raw batches for the in-process source, as a keyed producer and a broker
 * would: partition by key hash, offsets per partition, batches of at most `batchSize` messages
 * of one topic-partition.
 */
export function* replayBatches(messages: Iterable<EncodedMessage>, options: ReplayBatchOptions): Generator<RawBatch> {
  const partitioner = new ReplayPartitioner(options);
  for (const m of messages) yield* partitioner.add(m);
  yield* partitioner.drain();
}

/**
 * Messages in stages as raw batches for the in-process source, offsets running on across stages
 * (one producer): each stage's batches are all given out at its end, and `before(s)` is awaited
 * before stage s > 0 starts. What the demo uses to let a model be trained between two parts of
 * the stream.
 */
export async function* stagedReplayBatches(stages: ReadonlyArray<Iterable<EncodedMessage>>, options: ReplayBatchOptions, before: (stage: number) => Promise<void>): AsyncGenerator<RawBatch> {
  const partitioner = new ReplayPartitioner(options);
  for (const [s, stage] of stages.entries()) {
    if (s > 0) await before(s);
    for (const m of stage) yield* partitioner.add(m);
    yield* partitioner.drain();
  }
}

/**
 * Dataset events as raw batches for the in-process source, paced like {@link replayToKafka}:
 * before each pause, what is buffered goes out, so the stream's consumer sees events about when
 * they are due. Ends early when `signal` aborts.
 */
export async function* pacedReplayBatches(events: Iterable<ReplayEvent>, options: ReplayBatchOptions & PacingOptions): AsyncGenerator<RawBatch> {
  const partitioner = new ReplayPartitioner(options);
  for await (const e of pacedEvents(events, options)) {
    if (e === PAUSE) yield* partitioner.drain();
    else yield* partitioner.add(encodeReplayEvent(e));
  }
  yield* partitioner.drain();
}
