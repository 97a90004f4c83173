import { wellFormed } from '../errors';
import type { DeadLetter, DeadLetterCode, MessageOrigin } from '../schemas/events';

/** A message as read from a source (Kafka or in-process), before decoding. */
export interface RawMessage {
  /** Offset as a decimal string (Kafka's representation). */
  readonly offset: string;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
}

/** Messages of one topic-partition, in offset order: the unit of work of the ingest stage. */
export interface RawBatch {
  readonly topic: string;
  readonly partition: number;
  readonly messages: readonly RawMessage[];
  /** Messages of the partition behind this batch when it was fetched (Kafka sources). */
  readonly lag?: number;
}

/** A decoded event with where it came from. */
export interface Sourced<T> {
  readonly event: T;
  readonly origin: MessageOrigin;
  /** `origin.offset` as a number (offsets stay below 2^53). */
  readonly offset: number;
  /** The original bytes, kept for dead-lettering in later stages. */
  readonly raw: Buffer | null;
  /** Set by `sessionize`: the 0-based session number of the user. */
  readonly sessionIndex?: number;
}

/**
 * One source batch flowing through the ingest operators. Every operator maps one batch to
 * exactly one batch: events it rejects move to `deadLetters`, nothing is dropped silently.
 */
export interface IngestBatch<T> {
  readonly topic: string;
  readonly partition: number;
  readonly events: ReadonlyArray<Sourced<T>>;
  readonly deadLetters: readonly DeadLetter[];
  /** Redelivered messages skipped because their effects were already durable. */
  readonly skipped: number;
  /** Accepted events whose message key is absent or not their own id (key check `count`). */
  readonly keyMismatches?: number;
  /** Number of messages in the source batch. */
  readonly size: number;
  /** Offset of the batch's last message (undefined for an empty batch). */
  readonly lastOffset: string | undefined;
}

/** Builds a dead letter for one message. */
export function deadLetter(
  origin: MessageOrigin,
  raw: Buffer | null,
  code: DeadLetterCode,
  message: string,
  path: string | null,
  failedAt: number,
): DeadLetter {
  return {
    payload: raw ? raw.toString('base64') : '',
    payloadBytes: raw ? raw.length : 0,
    // A plain copy: the origin may compute fields on read (see decodeEvents), a dead letter is data.
    origin: { topic: origin.topic, partition: origin.partition, offset: origin.offset, key: origin.key },
    // Well-formed, whatever the message quotes (a key with a lone surrogate in `path`).
    error: { code, message: wellFormed(message), path: path === null ? null : wellFormed(path) },
    failedAt,
  };
}

/** A copy of `batch` with other events and extra dead letters. */
export function withEvents<T, U>(
  batch: IngestBatch<T>,
  events: ReadonlyArray<Sourced<U>>,
  extraDeadLetters: readonly DeadLetter[] = [],
  extraSkipped = 0,
): IngestBatch<U> {
  return {
    topic: batch.topic,
    partition: batch.partition,
    events,
    deadLetters: extraDeadLetters.length > 0 ? [...batch.deadLetters, ...extraDeadLetters] : batch.deadLetters,
    skipped: batch.skipped + extraSkipped,
    ...(batch.keyMismatches ? { keyMismatches: batch.keyMismatches } : {}),
    size: batch.size,
    lastOffset: batch.lastOffset,
  };
}
