/**
 * Hostile messages for property-based tests of ingest (fast-check): valid interaction and catalog
 * events, mutated the ways a careless or hostile producer would (type confusion, numeric and date
 * boundaries, Unicode, sizes, nesting, duplicate and __proto__ keys, key mismatches, broken bytes).
 * Used by the property test in `npm test` and by `npm run bench -- fuzz` (on the broker).
 */
import fc from 'fast-check';
import { INTERACTION_TYPES } from '../schemas/events';
import { DEFAULT_LIMITS, type EventLimits } from '../schemas/limits';

export type FuzzTopic = 'interactions' | 'catalog';

/** One message as a producer would send it. */
export interface FuzzMessage {
  readonly topic: FuzzTopic;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  /** The mutations applied, for a failing case's report. */
  readonly mutations: readonly string[];
}

const DAY = 86_400_000;
const RECENT = 5 * 60_000;
const USERS = ['u1', 'u2', 'u3', 'user-\u00e9', '\u6771\u4eac', 'u-\ud83d\ude80'];
const ITEMS = ['i1', 'i2', 'i3', 'item-\u00fc', 'sku/7', 'i\ud83e\uddea'];

/** Values that break types, ranges and encodings. */
const hostileValue = (): fc.Arbitrary<unknown> =>
  fc.oneof(
    fc.constantFrom<unknown>(null, true, false, 0, -0, -1, 1.5, 2 ** 53 + 2, 1e20, -1e20, 8.64e15, 8.64e15 + 1, Number.MAX_VALUE, 5e-324, ''),
    fc.constantFrom('\ud800', 'a\udc00b', '\u202eevil', 'a\u0000b', '\ufeff', '\u0007', '\ud83d\ude00', ' ', '\u3000', 'NaN', 'Infinity', '__proto__'),
    fc.constantFrom('2018-02-30T00:00:00Z', '2024-02-29T00:00:00Z', '2023-02-29T12:00:00Z', '2024-01-01T24:00:00Z', '2024-13-01T00:00:00Z', '+275760-09-13T00:00:00.001Z', '1970-01-01', 'yesterday'),
    fc.string({ maxLength: 40 }),
    fc.string({ unit: 'binary', maxLength: 20 }),
    fc.integer(),
    fc.double(),
    fc.array(fc.oneof(fc.string({ maxLength: 5 }), fc.integer()), { maxLength: 5 }),
    fc.dictionary(fc.string({ maxLength: 5 }), fc.oneof(fc.string({ maxLength: 5 }), fc.integer(), fc.constant(null)), { maxKeys: 4 }),
    fc.tuple(fc.constantFrom('\ud800', 'k\udc00', '__proto__'), fc.string({ maxLength: 3 })).map(([k, v]) => ({ [k]: v })),
  );

/** Keys that break encodings or hide (a lone surrogate, __proto__, empty). */
const hostileKey = (): fc.Arbitrary<string> =>
  fc.oneof(fc.string({ maxLength: 8 }), fc.string({ unit: 'binary', maxLength: 4 }), fc.constantFrom('\ud800', 'a\udfffb', '__proto__', '', 'userId'));

const validInteraction = (now: number): fc.Arbitrary<Record<string, unknown>> =>
  fc.record(
    {
      eventId: fc.string({ minLength: 1, maxLength: 12, unit: fc.constantFrom(...'abcdef0123456789-') }),
      userId: fc.constantFrom(...USERS),
      itemId: fc.constantFrom(...ITEMS),
      type: fc.constantFrom(...INTERACTION_TYPES),
      value: fc.double({ min: 0, max: 5, noNaN: true }),
      // Within the out-of-order tolerance of each other (a valid event is not late).
      ts: fc.oneof(fc.integer({ min: now - RECENT, max: now }), fc.integer({ min: now - RECENT, max: now }).map((t) => new Date(t).toISOString())),
      source: fc.constantFrom('web', 'app'),
      context: fc.dictionary(fc.constantFrom('page', 'device', 'pos'), fc.oneof(fc.string({ maxLength: 8 }), fc.integer(), fc.boolean()), { maxKeys: 3 }),
    },
    { requiredKeys: ['eventId', 'userId', 'itemId', 'type', 'ts'] },
  );

const validItem = (now: number): fc.Arbitrary<Record<string, unknown>> =>
  fc.record(
    {
      itemId: fc.constantFrom(...ITEMS),
      ts: fc.integer({ min: now - 30 * DAY, max: now }),
      title: fc.string({ maxLength: 60 }),
      brand: fc.string({ maxLength: 10 }),
      categories: fc.array(fc.string({ maxLength: 10 }), { maxLength: 4 }),
      description: fc.string({ maxLength: 200 }),
      features: fc.array(fc.string({ maxLength: 10 }), { maxLength: 4 }),
    },
    { requiredKeys: ['itemId', 'ts'] },
  );

type ObjectMutation = { readonly name: string; apply(event: Record<string, unknown>): Record<string, unknown> };

const objectMutation = (fields: readonly string[], limits: EventLimits): fc.Arbitrary<ObjectMutation> =>
  fc.oneof(
    fc.tuple(fc.constantFrom(...fields), hostileValue()).map(([field, value]) => ({ name: `set ${field}`, apply: (e: Record<string, unknown>) => ({ ...e, [field]: value }) })),
    fc.constantFrom(...fields).map((field) => ({
      name: `drop ${field}`,
      apply: (e: Record<string, unknown>) => Object.fromEntries(Object.entries(e).filter(([k]) => k !== field)),
    })),
    fc.tuple(hostileKey(), hostileValue()).map(([field, value]) => ({ name: 'extra field', apply: (e: Record<string, unknown>) => ({ ...e, [field]: value }) })),
    fc.integer({ min: 1, max: 3000 }).map((depth) => ({
      name: `nest ${depth}`,
      apply: (e: Record<string, unknown>) => {
        let node: unknown = 'leaf';
        for (let i = 0; i < depth; i++) node = i % 2 === 0 ? { n: node } : [node];
        return { ...e, context: node };
      },
    })),
    fc.constantFrom(...fields).map((field) => ({
      name: `huge ${field}`,
      apply: (e: Record<string, unknown>) => ({ ...e, [field]: 'x'.repeat(limits.maxTextLength + 1) }),
    })),
  );

type TextMutation = { readonly name: string; apply(text: string): string };

const textMutation = (fields: readonly string[]): fc.Arbitrary<TextMutation> =>
  fc.oneof(
    // A key given twice, at the top or inside an object value.
    fc.tuple(fc.constantFrom(...fields), hostileValue()).map(([field, value]) => ({
      name: `duplicate ${field}`,
      apply: (t: string) => `{${JSON.stringify(field)}:${JSON.stringify(value ?? null) ?? 'null'},${t.slice(1)}`,
    })),
    fc.constant({ name: 'duplicate nested', apply: (t: string) => t.replace(/^\{/, '{"context":{"a":1,"a":2},') }),
    fc.constant({ name: '__proto__ key', apply: (t: string) => t.replace(/^\{/, '{"__proto__":{"admin":true},') }),
    fc.constant({ name: 'nested __proto__', apply: (t: string) => t.replace(/^\{/, '{"context":{"__proto__":1},') }),
    // A lone surrogate escape inside the first string value.
    fc.constantFrom('\\ud800', '\\udfff', '\\uDBFF').map((esc) => ({ name: `surrogate ${esc}`, apply: (t: string) => t.replace(/:"/, `:"${esc}`) })),
    fc.constant({ name: 'escaped pair', apply: (t: string) => t.replace(/:"/, ':"\\ud83d\\ude00') }),
    fc.constant({ name: 'trailing garbage', apply: (t: string) => `${t} x` }),
    fc.constant({ name: 'array', apply: (t: string) => `[${t}]` }),
    fc.constantFrom('null', '1', '"s"', 'true', '{}', '[]', '').map((v) => ({ name: `value ${v}`, apply: () => v })),
  );

type ByteMutation = { readonly name: string; apply(bytes: Buffer): Buffer | null };

const byteMutation = (limits: EventLimits): fc.Arbitrary<ByteMutation> =>
  fc.oneof(
    fc.double({ min: 0, max: 1, noNaN: true }).map((at) => ({ name: 'truncate', apply: (b: Buffer) => b.subarray(0, Math.floor(b.length * at)) })),
    fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.integer({ min: 0, max: 255 })).map(([at, byte]) => ({
      name: `byte ${byte}`,
      apply: (b: Buffer) => {
        const out = Buffer.from(b);
        if (out.length > 0) out[Math.min(out.length - 1, Math.floor(out.length * at))] = byte;
        return out;
      },
    })),
    fc.constantFrom([0xed, 0xa0, 0x80], [0xc0, 0xaf], [0xff], [0xef, 0xbb, 0xbf], [0x00]).map((bytes) => ({
      name: `insert ${bytes.join(',')}`,
      apply: (b: Buffer) => Buffer.concat([b.subarray(0, 12), Buffer.from(bytes), b.subarray(12)]),
    })),
    fc.constant({ name: 'null value', apply: () => null }),
    fc.constant({ name: 'oversized', apply: (b: Buffer) => Buffer.concat([b.subarray(0, b.length - 1), Buffer.from(`,"pad":"${'p'.repeat(limits.maxMessageBytes)}"}`)]) }),
  );

type KeyChoice = 'id' | 'other' | 'null' | 'bytes';

/**
 * One message: a valid event of either topic, most of the time mutated (0 to 3 object mutations,
 * maybe one text and one byte mutation), keyed by its id or not.
 */
export function fuzzMessage(now: number, limits: EventLimits = DEFAULT_LIMITS): fc.Arbitrary<FuzzMessage> {
  return fc
    .record({
      topic: fc.constantFrom<FuzzTopic>('interactions', 'interactions', 'catalog'),
      keyChoice: fc.oneof({ arbitrary: fc.constant<KeyChoice>('id'), weight: 12 }, { arbitrary: fc.constantFrom<KeyChoice>('other', 'null', 'bytes'), weight: 1 }),
    })
    .chain(({ topic, keyChoice }) => {
      const fields = topic === 'interactions' ? ['eventId', 'userId', 'itemId', 'type', 'value', 'ts', 'source', 'context'] : ['itemId', 'ts', 'title', 'brand', 'categories', 'description', 'features', 'meta'];
      return fc
        .record({
          event: topic === 'interactions' ? validInteraction(now) : validItem(now),
          // About half the messages are left valid by each kind of mutation.
          objects: fc.oneof({ arbitrary: fc.constant([]), weight: 2 }, { arbitrary: fc.array(objectMutation(fields, limits), { minLength: 1, maxLength: 3 }), weight: 1 }),
          text: fc.oneof({ arbitrary: fc.constant(null), weight: 5 }, { arbitrary: textMutation(fields), weight: 1 }),
          bytes: fc.oneof({ arbitrary: fc.constant(null), weight: 8 }, { arbitrary: byteMutation(limits), weight: 1 }),
          rawKey: fc.uint8Array({ maxLength: 6 }),
        })
        .map(({ event, objects, text, bytes, rawKey }): FuzzMessage => {
          const mutations: string[] = [];
          let e = event;
          for (const m of objects) {
            e = m.apply(e);
            mutations.push(m.name);
          }
          let json = JSON.stringify(e);
          if (text) {
            json = text.apply(json);
            mutations.push(text.name);
          }
          let value: Buffer | null = Buffer.from(json, 'utf8');
          if (bytes) {
            value = bytes.apply(value);
            mutations.push(bytes.name);
          }
          const id = topic === 'interactions' ? event.userId : event.itemId;
          const key =
            keyChoice === 'id' ? Buffer.from(String(id)) : keyChoice === 'other' ? Buffer.from('someone-else') : keyChoice === 'null' ? null : Buffer.from(rawKey);
          if (keyChoice !== 'id') mutations.push(`key ${keyChoice}`);
          return { topic, key, value, mutations };
        });
    });
}
