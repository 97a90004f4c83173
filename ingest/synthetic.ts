import { Random } from '../random';
import type { InteractionEvent, InteractionType } from '../schemas/events';
import { FAULT_KINDS, faultyMessage, type FaultKind, type InjectedMessage } from './faults';

export interface SyntheticStreamOptions {
  readonly count: number;
  readonly users: number;
  readonly items: number;
  /** Fraction of messages that are bad (each a random fault kind). */
  readonly badRate: number;
  readonly seed: number;
  /** Event time of the first events (epoch ms). */
  readonly startTs: number;
  /** Wall clock that "future" timestamps are measured against. */
  readonly now: number;
  /** The ingest out-of-order tolerance: good events stay within it, late ones exceed it. */
  readonly toleranceMs: number;
  readonly maxMessageBytes: number;
  /** Mean event-time gap between consecutive messages of the stream (default 1 s). */
  readonly meanGapMs?: number;
  /** Fraction of good events that arrive out of order (within the tolerance). */
  readonly outOfOrderRate?: number;
  readonly faults?: readonly FaultKind[];
}

const TYPES: InteractionType[] = ['view', 'view', 'view', 'click', 'click', 'add_to_cart', 'purchase'];

/**
 * A reproducible interaction stream with planted faults: users and items drawn with a skewed
 * (Zipf-like) popularity, one stream clock moving forward by random gaps, some events out of
 * order within the tolerance, and `badRate` of messages bad in one of the {@link FAULT_KINDS}.
 * Every message says which dead-letter code it must get (`expected`), so tests can check them.
 */
export function* syntheticInteractions(options: SyntheticStreamOptions): Generator<InjectedMessage> {
  const rng = new Random(options.seed);
  const faults = options.faults ?? FAULT_KINDS;
  const newest = new Map<string, number>();
  const lastGood = new Map<string, InteractionEvent>();
  const skewed = (n: number): number => Math.min(n - 1, Math.floor(n * Math.pow(rng.next(), 2.5)));
  let serial = 0;
  // One clock for the whole stream, as in a live system: users' events interleave in time.
  let clock = options.startTs;
  for (let i = 0; i < options.count; i++) {
    clock += 1 + Math.floor(rng.exponential(options.meanGapMs ?? 1000));
    const userId = `u${skewed(options.users)}`;
    const prev = lastGood.get(userId);
    const wantsFault = rng.next() < options.badRate;
    if (wantsFault) {
      let kind = faults[rng.int(faults.length)] as FaultKind;
      if ((kind === 'duplicate' || kind === 'late') && !prev) kind = 'not_json';
      const base: InteractionEvent = prev ?? { eventId: 'x', userId, itemId: 'i0', type: 'view', ts: options.startTs };
      const reference = kind === 'late' ? { ...base, ts: newest.get(userId) ?? base.ts } : base;
      yield faultyMessage(kind, reference, rng, {
        now: options.now,
        lateByMs: options.toleranceMs + 1 + rng.int(options.toleranceMs + 1),
        maxMessageBytes: options.maxMessageBytes,
        eventId: `bad-${options.seed}-${serial++}`,
      });
      continue;
    }
    const top = newest.get(userId);
    const ts =
      top !== undefined && rng.next() < (options.outOfOrderRate ?? 0.05)
        ? top - rng.int(Math.floor(options.toleranceMs * 0.9))
        : Math.max(clock, (top ?? clock) + 1);
    newest.set(userId, Math.max(top ?? ts, ts));
    const type = TYPES[rng.int(TYPES.length)] as InteractionType;
    const event: InteractionEvent = {
      eventId: `ev-${options.seed}-${serial++}`,
      userId,
      itemId: `i${skewed(options.items)}`,
      type,
      ts,
      ...(type === 'purchase' ? { value: 1 + rng.int(5) } : {}),
    };
    lastGood.set(userId, event);
    yield { key: userId, value: Buffer.from(JSON.stringify(event)), expected: undefined, event };
  }
}
