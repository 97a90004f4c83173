import type { Message, Producer } from 'kafkajs';
import { ConfigError } from '../errors';
import { sendChunked } from '../infra/kafka';
import type { TopicsConfig } from '../schemas/config';
import type { ReplayEvent } from './datasets';
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

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Produces dataset events to Kafka: catalog events to the catalog topic (key itemId),
 * interactions to the interactions topic (key userId, so each user stays in one partition and
 * keeps its order). With a speed factor, sends are paced by event time.
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
  let firstTs: number | undefined;
  const startedAt = Date.now();
  const flush = async (): Promise<void> => {
    if (items.length > 0) await sendChunked(options.producer, options.topics.catalog, items);
    if (interactions.length > 0) await sendChunked(options.producer, options.topics.interactions, interactions);
    produced += items.length + interactions.length;
    items = [];
    interactions = [];
    options.onProgress?.({ produced, total: options.total });
  };
  for (const e of options.events) {
    if (options.signal?.aborted) break;
    if (options.speed !== 'max' && e.kind === 'interaction') {
      firstTs ??= e.event.ts;
      const due = startedAt + (e.event.ts - firstTs) / options.speed.factor;
      const wait = due - Date.now();
      if (wait > 5) {
        await flush();
        await sleep(wait);
      }
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

/**
 * Turns messages into raw batches for the in-process source, as a keyed producer and a broker
 * would: partition by key hash, offsets per partition, batches of at most `batchSize` messages
 * of one topic-partition.
 */
export function* replayBatches(
  messages: Iterable<EncodedMessage>,
  options: { topics: Pick<TopicsConfig, 'interactions' | 'catalog'>; partitions?: number; batchSize?: number },
): Generator<RawBatch> {
  const partitions = options.partitions ?? 4;
  const batchSize = options.batchSize ?? 2000;
  const offsets = new Map<string, number>();
  const open = new Map<string, { topic: string; partition: number; messages: RawMessage[] }>();
  let buffered = 0;
  function* drain(): Generator<RawBatch> {
    for (const b of open.values()) if (b.messages.length > 0) yield { topic: b.topic, partition: b.partition, messages: b.messages };
    open.clear();
    buffered = 0;
  }
  for (const m of messages) {
    const topic = m.stream === 'catalog' ? options.topics.catalog : options.topics.interactions;
    const partition = partitionOf(m.key, partitions);
    const id = `${topic}/${partition}`;
    const offset = offsets.get(id) ?? 0;
    offsets.set(id, offset + 1);
    let batch = open.get(id);
    if (!batch) {
      batch = { topic, partition, messages: [] };
      open.set(id, batch);
    }
    batch.messages.push({ offset: String(offset), key: Buffer.from(m.key), value: m.value });
    buffered++;
    if (buffered >= batchSize * partitions) yield* drain();
  }
  yield* drain();
}
