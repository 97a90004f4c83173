import { Random } from '../random';
import { interactionEventSchema } from './events';
import { fastInteraction } from './fastInteraction';
import { DEFAULT_LIMITS } from './limits';

const schema = interactionEventSchema(DEFAULT_LIMITS);

/** Random variations of an event, many of them invalid in one or more fields. */
function mutate(rng: Random): Record<string, unknown> {
  // Half the time the first (valid) option, so that valid events are common too.
  const pick = <T>(xs: readonly T[]): T => (rng.next() < 0.5 ? xs[0] : xs[rng.int(xs.length)]) as T;
  const base: Record<string, unknown> = {
    eventId: pick(['e1', '', 'x'.repeat(256), 'x'.repeat(257), 5, null]),
    userId: pick(['u1', '', 'ü'.repeat(300), undefined, 1]),
    itemId: pick(['i1', 'i2', '', [], {}]),
    type: pick(['view', 'click', 'add_to_cart', 'purchase', 'rating', 'like', 'VIEW', 3]),
    ts: pick([1700000000000, 1700000000000.6, -4, Number.NaN, Infinity, '2024-01-01T00:00:00Z', '1700000000000', null]),
  };
  if (rng.next() < 0.5) base.value = pick([1, 4.5, Number.NaN, '3', null, -2]);
  if (rng.next() < 0.3) base.source = pick(['web', 'x'.repeat(129), 7]);
  if (rng.next() < 0.2) base.context = pick([{ page: 'home' }, { n: 1 }, 'ctx']);
  if (rng.next() < 0.2) base.extra = 'dropped';
  if (rng.next() < 0.1) delete base.type;
  return base;
}

describe('fastInteraction', () => {
  it('agrees with the zod schema: never accepts what it rejects, and returns the same value when it accepts', () => {
    const rng = new Random(3);
    let fast = 0;
    for (let i = 0; i < 20_000; i++) {
      const input = mutate(rng);
      const quick = fastInteraction(input, DEFAULT_LIMITS);
      const full = schema.safeParse(input);
      if (quick !== undefined) {
        fast++;
        expect(full.success).toBe(true);
        expect(quick).toEqual(full.data);
      }
    }
    expect(fast).toBeGreaterThan(1000); // the fast path does take the common case
  });

  it('takes the plain common case and leaves context and ISO timestamps to zod', () => {
    const plain = { eventId: 'e', userId: 'u', itemId: 'i', type: 'purchase', value: 2, ts: 5.4, source: 's' };
    expect(fastInteraction(plain, DEFAULT_LIMITS)).toEqual({ eventId: 'e', userId: 'u', itemId: 'i', type: 'purchase', value: 2, ts: 5, source: 's' });
    expect(fastInteraction({ ...plain, context: { a: 1 } }, DEFAULT_LIMITS)).toBeUndefined();
    expect(fastInteraction({ ...plain, ts: '2024-01-01T00:00:00Z' }, DEFAULT_LIMITS)).toBeUndefined();
  });
});
