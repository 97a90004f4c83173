/**
 * The one error hierarchy of streamrec.
 *
 * Every error thrown on purpose by the project is a {@link StreamrecError}: it carries a stable
 * machine `code`, whether retrying can help (`retriable`), the `cause` it wraps, and a `context`
 * naming where it happened (topic, partition, offset, itemId, path, ...). Messages name the
 * argument, what was expected and what was received (see {@link describeValue}).
 */

/** Where an error happened. Only the keys that apply are set. */
export interface ErrorContext {
  readonly topic?: string;
  readonly partition?: number;
  readonly offset?: string | number;
  readonly userId?: string;
  readonly itemId?: string;
  readonly path?: string;
  readonly field?: string;
  readonly url?: string;
  readonly [key: string]: unknown;
}

export interface StreamrecErrorOptions {
  readonly cause?: unknown;
  readonly retriable?: boolean;
  readonly context?: ErrorContext;
}

export class StreamrecError extends Error {
  /** Stable machine code, e.g. `config`, `validation`, `kafka`. */
  readonly code: string = 'streamrec';
  /** Whether the same call may succeed when retried. */
  readonly retriable: boolean;
  readonly context: ErrorContext;

  constructor(message: string, options: StreamrecErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.retriable = options.retriable ?? false;
    this.context = options.context ?? {};
  }
}

/** A setting is missing, unknown or out of range. Never retriable. */
export class ConfigError extends StreamrecError {
  override readonly code = 'config';
}

/** Input data (an event, a dataset row, a file) does not match what was expected. */
export class ValidationError extends StreamrecError {
  override readonly code = 'validation';
}

/** A dataset directory or file cannot be read as the expected format. */
export class DatasetError extends StreamrecError {
  override readonly code = 'dataset';
}

/** Talking to Kafka failed. Retriable unless the broker said otherwise. */
export class KafkaError extends StreamrecError {
  override readonly code = 'kafka';
}

/** Talking to a store (ClickHouse, files) failed. */
export class StoreError extends StreamrecError {
  override readonly code = 'store';
}

/** An artifact (embeddings, codebooks, checkpoint) is missing, corrupt or incompatible. */
export class ArtifactError extends StreamrecError {
  override readonly code = 'artifact';
}

/** The model registry refused or failed a publication, or cannot be read. */
export class RegistryError extends StreamrecError {
  override readonly code = 'registry';
}

/** The numeric backend (TF.js) cannot do what was asked. */
export class BackendError extends StreamrecError {
  override readonly code = 'backend';
}

/** An operation was stopped on purpose (shutdown signal, abort). */
export class AbortedError extends StreamrecError {
  override readonly code = 'aborted';
}

const LONE_SURROGATES = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/**
 * `text` with each lone surrogate replaced by U+FFFD (what String.prototype.toWellFormed does):
 * text quoted from a bad input (a key in an error's path) must not make the error itself
 * unstorable (ClickHouse refuses a lone surrogate) or unencodable.
 */
export function wellFormed(text: string): string {
  LONE_SURROGATES.lastIndex = 0;
  return LONE_SURROGATES.test(text) ? text.replace(LONE_SURROGATES, '\uFFFD') : text;
}

/** ISO-8601 for a time a Date can hold (|ms| <= 8.64e15), else the number itself: never throws. */
export function describeTime(ms: number): string {
  return Number.isFinite(ms) && Math.abs(ms) <= 8.64e15 ? new Date(ms).toISOString() : `${ms} ms`;
}

/**
 * Short, bounded description of a received value for error messages:
 * `string "abc"`, `number 3`, `array(2)`, `object {a, b}`, `null`.
 */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'string') {
    const shown = value.length > 40 ? `${value.slice(0, 40)}...` : value;
    return `string ${JSON.stringify(shown)}${value.length > 40 ? ` (${value.length} chars)` : ''}`;
  }
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') {
    return `${typeof value} ${String(value)}`;
  }
  if (Array.isArray(value)) return `array(${value.length})`;
  if (ArrayBuffer.isView(value)) return `${value.constructor.name}(${(value as unknown as ArrayLike<unknown>).length})`;
  if (typeof value === 'object') {
    const keys = Object.keys(value as object);
    const shown = keys.slice(0, 5).join(', ');
    return `object {${shown}${keys.length > 5 ? ', ...' : ''}}`;
  }
  return typeof value;
}

/** True when `error` is a StreamrecError that says retrying can help. */
export function isRetriable(error: unknown): boolean {
  return error instanceof StreamrecError ? error.retriable : false;
}
