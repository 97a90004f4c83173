import { isUtf8 } from 'node:buffer';
import { map, type OperatorFunction } from 'rxjs';
import type { z } from 'zod';
import { describeTime, describeValue } from '../../errors';
import type { DeadLetter, DeadLetterCode, MessageOrigin } from '../../schemas/events';
import type { EventLimits } from '../../schemas/limits';
import { deadLetter, type IngestBatch, type RawBatch, type Sourced } from '../types';
import { suspiciousKey } from './jsonKeys';

export interface DecodeOptions<S extends z.ZodType<{ ts: number }>> {
  /** The event schema (built with the same limits), e.g. `interactionEventSchema(limits)`. */
  readonly schema: S;
  readonly limits: EventLimits;
  /** Wall clock for the future-timestamp check and `failedAt` (tests pass a fixed one). */
  readonly now?: () => number;
  /**
   * A cheaper check of the common case that returns exactly what `schema` would, or undefined
   * to fall back to `schema` (e.g. `fastInteraction`).
   */
  readonly fastPath?: (json: Record<string, unknown>, limits: EventLimits) => z.output<S> | undefined;
  /**
   * The event field the message key must equal (`userId`, `itemId`), and what a message whose key
   * is absent or differs gets: dead-lettered (`key_mismatch`, default) or counted and accepted.
   */
  readonly keyCheck?: { readonly field: string; readonly policy: 'dead_letter' | 'count' };
}

interface Rejection {
  readonly code: DeadLetterCode;
  readonly message: string;
  readonly path: string | null;
}

/**
 * Where a message came from, with its key decoded only when read: dead letters read it, accepted
 * events never do (one string less per event).
 */
class SourceOrigin implements MessageOrigin {
  constructor(
    readonly topic: string,
    readonly partition: number,
    readonly offset: string,
    private readonly rawKey: Buffer | null,
  ) {}

  get key(): string | null {
    return this.rawKey ? this.rawKey.toString('utf8') : null;
  }
}

/** A message that is not a valid event (events themselves are plain objects). */
class Rejected {
  constructor(readonly rejection: Rejection) {}
}

function valueAt(root: unknown, path: ReadonlyArray<PropertyKey>): unknown {
  let node = root;
  for (const key of path) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<PropertyKey, unknown>)[key];
  }
  return node;
}

function explain(issue: z.core.$ZodIssue, input: unknown): Rejection {
  const path = issue.path.length > 0 ? issue.path.map(String).join('.') : null;
  const got = describeValue(valueAt(input, issue.path));
  if (path === 'type' && issue.code === 'invalid_value' && typeof valueAt(input, issue.path) === 'string') {
    return {
      code: 'unknown_type',
      message: `type: unknown event type ${got.slice('string '.length)} (expected one of ${issue.values.join(', ')})`,
      path,
    };
  }
  const detail = issue.code === 'invalid_type' ? `expected ${issue.expected}` : issue.message;
  return { code: 'schema', message: `${path ?? '(event)'}: ${detail}, got ${got}`, path };
}

/** A `\uD800`-`\uDFFF` escape: the only way a lone surrogate gets into JSON that is valid UTF-8. */
const SURROGATE_ESCAPE = /\\u[dD][89a-fA-F][0-9a-fA-F]{2}/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** The path of the first string (value or key) in `node` that is not well-formed Unicode (a lone surrogate), or undefined. */
function illFormedAt(node: unknown, path: string[] = []): string[] | undefined {
  if (typeof node === 'string') return LONE_SURROGATE.test(node) ? path : undefined;
  if (node === null || typeof node !== 'object') return undefined;
  for (const [key, value] of Object.entries(node)) {
    if (LONE_SURROGATE.test(key)) return [...path, key];
    const found = illFormedAt(value, [...path, key]);
    if (found) return found;
  }
  return undefined;
}

/** Whether the message key's bytes are `id` in UTF-8; an ASCII key is compared without decoding it (one string less per event). */
function keyIs(key: Buffer | null, id: string): boolean {
  if (key === null) return false;
  if (key.length !== id.length) return key.toString('utf8') === id; // multi-byte characters, or different
  for (let i = 0; i < key.length; i++) {
    const c = id.charCodeAt(i);
    if (c > 0x7f) return key.toString('utf8') === id;
    if (key[i] !== c) return false;
  }
  return true;
}

function checkTimestamp(ts: number, limits: EventLimits, now: number): Rejection | undefined {
  if (ts < 0) return { code: 'ts_out_of_range', message: `ts: ${ts} is negative (expected epoch milliseconds >= 0)`, path: 'ts' };
  if (ts > now + limits.maxFutureSkewMs) {
    const hours = ((ts - now) / 3_600_000).toFixed(1);
    return {
      code: 'ts_out_of_range',
      message: `ts: ${describeTime(ts)} is ${hours} h ahead of the ingest clock (limit ${limits.maxFutureSkewMs} ms)`,
      path: 'ts',
    };
  }
  return undefined;
}

/**
 * Decodes and validates a batch of raw messages. Each message becomes either a typed event or a
 * dead letter (`too_large`, `invalid_json`, `schema`, `unknown_type`, `ts_out_of_range`) with
 * its origin and original bytes; the operator never throws for bad input.
 *
 * @example
 * rawBatches$.pipe(decodeEvents({ schema: interactionEventSchema(limits), limits }))
 */
export function decodeEvents<S extends z.ZodType<{ ts: number }>>(
  options: DecodeOptions<S>,
): OperatorFunction<RawBatch, IngestBatch<z.output<S>>> {
  const { schema, limits } = options;
  const now = options.now ?? Date.now;
  /** One message's event, or why it is rejected (`clock`: the batch's ingest time). */
  const decode = (raw: Buffer | null, clock: number): z.output<S> | Rejected => {
    if (raw === null || raw.length === 0) return new Rejected({ code: 'invalid_json', message: 'empty message value (expected a JSON object)', path: null });
    if (raw.length > limits.maxMessageBytes) {
      return new Rejected({ code: 'too_large', message: `message is ${raw.length} bytes, limit is ${limits.maxMessageBytes}`, path: null });
    }
    if (!isUtf8(raw)) return new Rejected({ code: 'invalid_json', message: 'message value is not valid UTF-8', path: null });
    let json: unknown;
    const text = raw.toString('utf8');
    try {
      json = JSON.parse(text);
    } catch (error) {
      return new Rejected({ code: 'invalid_json', message: `not JSON: ${(error as Error).message}`, path: null });
    }
    if (json === null || typeof json !== 'object' || Array.isArray(json)) {
      return new Rejected({ code: 'schema', message: `expected a JSON object, got ${describeValue(json)}`, path: null });
    }
    // A key given twice is ambiguous (JSON.parse keeps the last); __proto__ would be dropped by a copy.
    const odd = suspiciousKey(text);
    if (odd) {
      const message = odd.reason === 'duplicate' ? `${odd.path}: the key is given more than once (which value is meant is ambiguous)` : `${odd.path}: __proto__ is not allowed as a key (a copy of the event would drop it)`;
      return new Rejected({ code: 'schema', message, path: odd.path });
    }
    // Text must be well-formed Unicode before it reaches a sink (ClickHouse refuses a lone
    // surrogate, and with it the whole batch); only a \uD8xx-style escape can make one.
    if (SURROGATE_ESCAPE.test(text)) {
      const at = illFormedAt(json);
      if (at) {
        const path = at.length > 0 ? at.join('.') : null;
        return new Rejected({ code: 'schema', message: `${path ?? '(event)'}: expected well-formed Unicode text, got a lone surrogate (an unpaired \\uD800-\\uDFFF escape)`, path });
      }
    }
    let event = options.fastPath?.(json as Record<string, unknown>, limits);
    if (event === undefined) {
      const parsed = schema.safeParse(json);
      if (!parsed.success) {
        const issues = parsed.error.issues;
        const typeIssue = issues.find((i) => i.path[0] === 'type' && i.code === 'invalid_value');
        return new Rejected(explain(typeIssue ?? (issues[0] as z.core.$ZodIssue), json));
      }
      event = parsed.data;
    }
    const bad = checkTimestamp((event as { ts: number }).ts, limits, clock);
    return bad ? new Rejected(bad) : (event as z.output<S>);
  };
  return map((batch: RawBatch): IngestBatch<z.output<S>> => {
    const events: Array<Sourced<z.output<S>>> = [];
    const deadLetters: DeadLetter[] = [];
    const clock = now();
    let keyMismatches = 0;
    const keyCheck = options.keyCheck;
    for (const message of batch.messages) {
      const origin = new SourceOrigin(batch.topic, batch.partition, message.offset, message.key);
      const raw = message.value;
      let decoded: z.output<S> | Rejected;
      try {
        decoded = decode(raw, clock);
      } catch (error) {
        // A check that throws rejects its message, never the batch: the consumer goes on past it.
        decoded = new Rejected({ code: 'internal', message: `checking the message failed: ${error instanceof Error ? error.message : String(error)}`, path: null });
      }
      if (keyCheck && !(decoded instanceof Rejected)) {
        const expected = String((decoded as Record<string, unknown>)[keyCheck.field]);
        if (!keyIs(message.key, expected)) {
          if (keyCheck.policy === 'count') keyMismatches++;
          else {
            const key = message.key === null ? null : message.key.toString('utf8');
            const why = key === null ? `the message has no key (expected the ${keyCheck.field}, ${JSON.stringify(expected)})` : `the message key ${JSON.stringify(key.slice(0, 200))} is not the ${keyCheck.field} ${JSON.stringify(expected)}`;
            decoded = new Rejected({ code: 'key_mismatch', message: `key: ${why}: the events of one id must share its key (one partition, in order)`, path: 'key' });
          }
        }
      }
      if (decoded instanceof Rejected) {
        const { code, message: why, path } = decoded.rejection;
        deadLetters.push(deadLetter(origin, raw, code, why, path, clock));
      } else events.push({ event: decoded, origin, offset: Number(message.offset), raw });
    }
    return {
      topic: batch.topic,
      partition: batch.partition,
      events,
      deadLetters,
      skipped: 0,
      ...(keyMismatches > 0 ? { keyMismatches } : {}),
      size: batch.messages.length,
      lastOffset: batch.messages[batch.messages.length - 1]?.offset,
    };
  });
}
