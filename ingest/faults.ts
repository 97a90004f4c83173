import type { Random } from '../random';
import type { DeadLetterCode, InteractionEvent } from '../schemas/events';

/**
 * Fault injection: turns good interaction messages into the bad inputs a real stream carries,
 * each with the dead-letter code the ingest stage must give it. Used by the demo, the end-to-end
 * tests and the benchmark.
 */
export const FAULT_KINDS = [
  'not_json',
  'truncated',
  'missing_user',
  'wrong_types',
  'unknown_type',
  'future_ts',
  'negative_ts',
  'oversized',
  'duplicate',
  'late',
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export const FAULT_CODES: Record<FaultKind, DeadLetterCode> = {
  not_json: 'invalid_json',
  truncated: 'invalid_json',
  missing_user: 'schema',
  wrong_types: 'schema',
  unknown_type: 'unknown_type',
  future_ts: 'ts_out_of_range',
  negative_ts: 'ts_out_of_range',
  oversized: 'too_large',
  duplicate: 'duplicate',
  late: 'late',
};

/** A message to produce: the key and value bytes, and the code it must be dead-lettered with (if bad). */
export interface InjectedMessage {
  readonly key: string;
  readonly value: Buffer;
  readonly expected: DeadLetterCode | undefined;
  /** How a bad message was made bad (undefined for good ones). */
  readonly fault?: FaultKind;
  /** For good events (and duplicates/late ones), the event itself. */
  readonly event?: InteractionEvent;
}

/**
 * A bad message derived from `base` (a good event of the same user, already produced when
 * `kind` is `duplicate`). `late` needs `lateByMs` larger than the ingest tolerance; `oversized`
 * needs the message limit.
 */
export function faultyMessage(
  kind: FaultKind,
  base: InteractionEvent,
  rng: Random,
  options: { now: number; lateByMs: number; maxMessageBytes: number; eventId: string },
): InjectedMessage {
  return { ...faultyContent(kind, base, rng, options), fault: kind };
}

function faultyContent(
  kind: FaultKind,
  base: InteractionEvent,
  rng: Random,
  options: { now: number; lateByMs: number; maxMessageBytes: number; eventId: string },
): InjectedMessage {
  const key = base.userId;
  const json = (v: unknown): Buffer => Buffer.from(JSON.stringify(v));
  const fresh = { ...base, eventId: options.eventId };
  switch (kind) {
    case 'not_json':
      return { key, value: Buffer.from(`user=${base.userId} item=${base.itemId} <${rng.int(1000)}>`), expected: 'invalid_json' };
    case 'truncated': {
      const text = JSON.stringify(fresh);
      return { key, value: Buffer.from(text.slice(0, 1 + rng.int(text.length - 2))), expected: 'invalid_json' };
    }
    case 'missing_user': {
      const { userId: _omit, ...rest } = fresh;
      return { key, value: json(rest), expected: 'schema' };
    }
    case 'wrong_types':
      return { key, value: json({ ...fresh, itemId: rng.int(1000), ts: 'yesterday' }), expected: 'schema' };
    case 'unknown_type':
      return { key, value: json({ ...fresh, type: ['like', 'share', 'hover'][rng.int(3)] }), expected: 'unknown_type' };
    case 'future_ts':
      return { key, value: json({ ...fresh, ts: options.now + 365 * 86_400_000 * (1 + rng.int(50)) }), expected: 'ts_out_of_range' };
    case 'negative_ts':
      return { key, value: json({ ...fresh, ts: -1 - rng.int(1_000_000) }), expected: 'ts_out_of_range' };
    case 'oversized':
      return { key, value: json({ ...fresh, context: { blob: 'x'.repeat(options.maxMessageBytes) } }), expected: 'too_large' };
    case 'duplicate':
      return { key, value: json(base), expected: 'duplicate', event: base };
    case 'late': {
      const event = { ...fresh, ts: base.ts - options.lateByMs };
      return { key, value: json(event), expected: 'late', event };
    }
  }
}
