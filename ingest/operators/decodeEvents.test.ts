import { map } from 'rxjs';
import { DeadLetter, interactionEventSchema, itemEventSchema } from '../../schemas/events';
import { fastInteraction } from '../../schemas/fastInteraction';
import { DEFAULT_LIMITS } from '../../schemas/limits';
import { decodeEvents } from './decodeEvents';
import { rawBatch, summary, testScheduler } from './testing/marbles';

const NOW = Date.UTC(2024, 0, 1);
const decode = () => decodeEvents({ schema: interactionEventSchema(DEFAULT_LIMITS), limits: DEFAULT_LIMITS, now: () => NOW });
const good = (id: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ eventId: id, userId: 'u1', itemId: 'i1', type: 'view', ts: NOW - 1000, ...extra });

describe('decodeEvents', () => {
  it('turns valid messages into events and every kind of bad message into the right dead letter', () => {
    const batch = rawBatch([
      good('e0'),
      '{"eventId": "e1", "userId"', // truncated JSON
      'not json at all',
      null, // tombstone
      JSON.stringify({ eventId: 'e4', itemId: 'i1', type: 'view', ts: NOW }), // missing userId
      good('e5', { userId: 42 }), // wrong type
      good('e6', { type: 'like' }), // unknown type
      good('e7', { ts: -5 }), // negative ts
      good('e8', { ts: NOW + 10 * 86_400_000 }), // far future
      good('e9', { pad: 'x'.repeat(DEFAULT_LIMITS.maxMessageBytes) }), // oversized
      Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), // invalid UTF-8
      '[1, 2]', // JSON but not an object
      good('e12', { ts: '2023-12-31T23:00:00Z' }), // ISO timestamp, normalised
      good('e13', { type: 'rating' }), // rating without value
    ]);
    let out: ReturnType<typeof summary> | undefined;
    let first: unknown;
    testScheduler().run(({ cold }) => {
      cold('a|', { a: batch })
        .pipe(decode())
        .subscribe((b) => {
          out = summary(b);
          first = b.events[0];
          const iso = b.events.find((e) => e.event.eventId === 'e12');
          expect(iso?.event.ts).toBe(Date.UTC(2023, 11, 31, 23));
          const missing = b.deadLetters.find((d) => d.origin.offset === '4');
          expect(missing?.error).toEqual({ code: 'schema', message: 'userId: expected string, got undefined', path: 'userId' });
          expect(b.deadLetters.find((d) => d.origin.offset === '6')?.error.message).toMatch(/unknown event type "like" \(expected one of view, click/);
          expect(b.deadLetters.find((d) => d.origin.offset === '9')?.error.message).toMatch(/bytes, limit is 65536/);
          const truncated = b.deadLetters.find((d) => d.origin.offset === '1')!;
          expect(Buffer.from(truncated.payload, 'base64').toString()).toBe('{"eventId": "e1", "userId"');
          expect(truncated.origin).toEqual({ topic: 'interactions', partition: 0, offset: '1', key: null });
        });
    });
    expect(out).toEqual({
      ids: ['e0', 'e12'],
      dead: ['1:invalid_json', '2:invalid_json', '3:invalid_json', '4:schema', '5:schema', '6:unknown_type', '7:ts_out_of_range',
        '8:ts_out_of_range', '9:too_large', '10:invalid_json', '11:schema', '13:schema'],
      skipped: 0,
    });
    expect(first).toMatchObject({ offset: 0, event: { eventId: 'e0', userId: 'u1', itemId: 'i1', type: 'view', ts: NOW - 1000 } });
  });

  it('dead-letters poison pills (a ts beyond the Date range, lone surrogates, impossible dates, hostile ids, duplicate keys, __proto__) on both topics and keeps the good events around them', () => {
    const item = (id: string, extra: Record<string, unknown> = {}) => JSON.stringify({ itemId: id, ts: NOW - 1000, title: 'a beaker', ...extra });
    const cases = [
      { topic: 'interactions', schema: interactionEventSchema(DEFAULT_LIMITS), fastPath: fastInteraction, ok: (id: string) => good(id), make: good, idField: 'userId' },
      { topic: 'catalog', schema: itemEventSchema(DEFAULT_LIMITS), fastPath: undefined, ok: (id: string) => item(id), make: item, idField: 'itemId' },
    ] as const;
    for (const c of cases) {
      const batch = { ...rawBatch([
        c.ok('g0'),
        c.make('p1', { ts: 1e20 }), // new Date(1e20).toISOString() throws RangeError
        c.make('p2', { ts: -1e20 }),
        c.make('p3', { ts: '2018-02-30T00:00:00Z' }), // Date.parse rolls it over to March 2
        c.make('p4', { ts: '2019-02-29T00:00:00Z' }), // not a leap year
        c.make('p5', { ts: '2024-01-01T24:00:00Z' }),
        c.ok('g6').replace('"ts"', '"note":"\\ud800","ts"'), // a lone surrogate escape, in an unknown field too
        c.make('p7', { [c.idField]: '   ' }), // blank id
        c.make('p8', { [c.idField]: 'a\u0007b' }), // control character
        c.make('p9', { [c.idField]: 'admin\u202egnp' }), // right-to-left override
        c.ok('g10').replace('"ts"', '"pair":"\\ud83d\\ude00","ts"'), // a well-formed pair is fine
        c.ok('g11'),
        c.ok('p12').replace('"ts"', `"${c.idField}":"other","ts"`), // the id given twice
        c.ok('p13').replace('"ts"', '"context":{"__proto__":{"admin":true}},"ts"'), // would be dropped by a copy
        c.ok('p14').replace('"ts"', '"context":{"a\\udc00b":1},"ts"'), // a lone surrogate in a key: the path quotes it
      ]), topic: c.topic };
      let out: ReturnType<typeof summary> | undefined;
      let letters: readonly DeadLetter[] = [];
      testScheduler().run(({ cold }) => {
        cold('a|', { a: batch })
          .pipe(decodeEvents({ schema: c.schema, limits: DEFAULT_LIMITS, now: () => NOW, ...(c.fastPath ? { fastPath: c.fastPath } : {}) }) as never)
          .subscribe((value: unknown) => {
            const b = value as Parameters<typeof summary>[0];
            out = summary(b);
            letters = b.deadLetters;
          });
      });
      const ids = c.topic === 'interactions' ? ['g0', 'g10', 'g11'] : undefined;
      if (ids) expect(out?.ids).toEqual(ids);
      expect(out?.dead).toEqual(['1:ts_out_of_range', '2:ts_out_of_range', '3:schema', '4:schema', '5:schema', '6:schema', '7:schema', '8:schema', '9:schema', '12:schema', '13:schema', '14:schema']);
      const why = (offset: string) => letters.find((d) => d.origin.offset === offset)?.error.message;
      expect(why('1')).toMatch(/^ts: 100000000000000000000 ms is \d+\.\d h ahead of the ingest clock \(limit \d+ ms\)$/);
      expect(why('3')).toMatch(/not a valid date-time: "2018-02-30T00:00:00Z" \(day 30 of a month with 28\)/);
      expect(why('4')).toMatch(/day 29 of a month with 28/);
      expect(why('6')).toBe('note: expected well-formed Unicode text, got a lone surrogate (an unpaired \\uD800-\\uDFFF escape)');
      expect(why('7')).toMatch(new RegExp(`${c.idField} must not be blank`));
      expect(why('8')).toMatch(/must not contain control or bidirectional-override characters/);
      expect(why('9')).toMatch(/must not contain control or bidirectional-override characters/);
      expect(why('12')).toBe(`${c.idField}: the key is given more than once (which value is meant is ambiguous)`);
      expect(why('13')).toBe('context.__proto__: __proto__ is not allowed as a key (a copy of the event would drop it)');
      // A dead letter is itself well-formed (storable, encodable): the surrogate it quotes is U+FFFD.
      const quoted = letters.find((d) => d.origin.offset === '14')?.error;
      expect(quoted).toMatchObject({ path: 'context.a\uFFFDb', message: expect.stringMatching(/^context\.a\uFFFDb: expected well-formed Unicode text/) });
    }
  });

  it('checks the message key against the event\'s id: a wrong or absent key is dead-lettered (key_mismatch), or counted and accepted', () => {
    const keyed = (keys: Array<string | null>) => ({
      ...rawBatch([good('e0'), good('e1'), good('e2'), good('e3', { userId: 'u2' })]),
      messages: rawBatch([good('e0'), good('e1'), good('e2'), good('e3', { userId: 'u2' })]).messages.map((m, i) => ({ ...m, key: keys[i] === null ? null : Buffer.from(keys[i] as string) })),
    });
    const batch = keyed(['u1', 'u2', null, 'u2']);
    const run = (policy: 'dead_letter' | 'count') => {
      let result: { out: ReturnType<typeof summary>; keyMismatches?: number; letters: readonly DeadLetter[] } | undefined;
      testScheduler().run(({ cold }) => {
        cold('a|', { a: batch })
          .pipe(decodeEvents({ schema: interactionEventSchema(DEFAULT_LIMITS), limits: DEFAULT_LIMITS, now: () => NOW, fastPath: fastInteraction, keyCheck: { field: 'userId', policy } }))
          .subscribe((b) => (result = { out: summary(b), ...(b.keyMismatches ? { keyMismatches: b.keyMismatches } : {}), letters: b.deadLetters }));
      });
      return result;
    };
    const rejected = run('dead_letter');
    expect(rejected?.out).toEqual({ ids: ['e0', 'e3'], dead: ['1:key_mismatch', '2:key_mismatch'], skipped: 0 });
    expect(rejected?.letters[0]?.error).toEqual({ code: 'key_mismatch', message: 'key: the message key "u2" is not the userId "u1": the events of one id must share its key (one partition, in order)', path: 'key' });
    expect(rejected?.letters[1]?.error.message).toMatch(/^key: the message has no key \(expected the userId, "u1"\)/);
    expect(rejected?.keyMismatches).toBeUndefined();
    const counted = run('count');
    expect(counted?.out).toEqual({ ids: ['e0', 'e1', 'e2', 'e3'], dead: [], skipped: 0 });
    expect(counted?.keyMismatches).toBe(2);
  });

  it('dead-letters a message whose check throws (code internal) and goes on with the batch', () => {
    const throwing = DEFAULT_LIMITS;
    let calls = 0;
    const fastPath = (json: Record<string, unknown>) => {
      if (calls++ === 1) throw new TypeError('a check that fails');
      return fastInteraction(json, DEFAULT_LIMITS);
    };
    let out: ReturnType<typeof summary> | undefined;
    let letter: DeadLetter | undefined;
    testScheduler().run(({ cold }) => {
      cold('a|', { a: rawBatch([good('e0'), good('e1'), good('e2')]) })
        .pipe(decodeEvents({ schema: interactionEventSchema(throwing), limits: throwing, now: () => NOW, fastPath }))
        .subscribe((b) => {
          out = summary(b);
          letter = b.deadLetters[0];
        });
    });
    expect(out).toEqual({ ids: ['e0', 'e2'], dead: ['1:internal'], skipped: 0 });
    expect(letter?.error).toEqual({ code: 'internal', message: 'checking the message failed: a check that fails', path: null });
  });

  it('gives events their origin and dead letters a plain copy of it with the message key (UTF-8)', () => {
    const batch = { topic: 'interactions', partition: 3, messages: [
      { offset: '7', key: Buffer.from('usér-1'), value: Buffer.from(good('e0')) },
      { offset: '8', key: Buffer.from('usér-2'), value: Buffer.from('nope') },
    ] };
    testScheduler().run(({ cold }) => {
      cold('a|', { a: batch })
        .pipe(decode())
        .subscribe((b) => {
          const origin = b.events[0]!.origin;
          expect([origin.topic, origin.partition, origin.offset, origin.key]).toEqual(['interactions', 3, '7', 'usér-1']);
          const letter = b.deadLetters[0]!;
          expect(DeadLetter.parse(letter)).toEqual(letter);
          expect(JSON.parse(JSON.stringify(letter.origin))).toEqual({ topic: 'interactions', partition: 3, offset: '8', key: 'usér-2' });
        });
    });
  });

  it('decodes catalog events with the item schema', () => {
    testScheduler().run(({ cold, expectObservable }) => {
      const items = rawBatch([JSON.stringify({ itemId: 'a', ts: 1, title: 'T', categories: ['x'] }), '{"ts": 1}'], 0, 0, 'catalog');
      const out = cold('a|', { a: items }).pipe(
        decodeEvents({ schema: itemEventSchema(), limits: DEFAULT_LIMITS, now: () => NOW }),
        map((b) => [b.events.map((e) => e.event.itemId), b.deadLetters.map((d) => d.error.path)]),
      );
      expectObservable(out).toBe('a|', { a: [['a'], ['itemId']] });
    });
  });

  it('passes errors, completion of an empty stream, never, and unsubscription through', () => {
    testScheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const src = cold('a-#', { a: rawBatch([good('x')]) }, new Error('boom'));
      expectObservable(src.pipe(decode(), map((b) => b.events.length))).toBe('a-#', { a: 1 }, new Error('boom'));
      expectObservable(cold<never>('|').pipe(decode())).toBe('|');
      expectObservable(cold<never>('-').pipe(decode())).toBe('-');
      const long = cold('a-a-a-a', { a: rawBatch([]) });
      expectObservable(long.pipe(decode(), map((b) => b.size)), '^--!').toBe('a-a-', { a: 0 });
      expectSubscriptions(long.subscriptions).toBe('^--!');
    });
  });

  it('enforces configured limits (ids, texts, lists, message size) with messages naming the field, the limit and what it got', () => {
    const limits = { ...DEFAULT_LIMITS, maxIdLength: 8, maxTextLength: 20, maxListLength: 2, maxMessageBytes: 200 };
    const interactions = rawBatch([
      good('e0'),
      good('e1', { userId: 'u'.repeat(9) }),
      good('e2-too-long'),
      good('e3', { itemId: '' }),
      good('e4', { context: { note: 'n'.repeat(150) } }),
    ]);
    const items = rawBatch(
      [
        JSON.stringify({ itemId: 'a', ts: 1, title: 'short', categories: ['x', 'y'] }),
        JSON.stringify({ itemId: 'b', ts: 1, title: 't'.repeat(21) }),
        JSON.stringify({ itemId: 'c', ts: 1, categories: ['x', 'y', 'z'] }),
        JSON.stringify({ itemId: 'd', ts: 1, features: ['ok', 'f'.repeat(21)] }),
      ],
      0,
      0,
      'catalog',
    );
    const errors = (b: { readonly events: readonly unknown[]; readonly deadLetters: readonly DeadLetter[] }) => [b.events.length, ...b.deadLetters.map((d) => [d.origin.offset, d.error])];
    testScheduler().run(({ cold, expectObservable }) => {
      // The processor's fast path must fall back to the schema and say the same as it.
      const fast = cold('a|', { a: interactions }).pipe(decodeEvents({ schema: interactionEventSchema(limits), limits, now: () => NOW, fastPath: fastInteraction }), map(errors));
      expectObservable(fast).toBe('a|', {
        a: [
          1,
          ['1', { code: 'schema', message: 'userId: userId is longer than 8 characters, got string "uuuuuuuuu"', path: 'userId' }],
          ['2', { code: 'schema', message: 'eventId: eventId is longer than 8 characters, got string "e2-too-long"', path: 'eventId' }],
          ['3', { code: 'schema', message: 'itemId: itemId must not be empty, got string ""', path: 'itemId' }],
          ['4', { code: 'too_large', message: expect.stringMatching(/^message is 2\d\d bytes, limit is 200$/), path: null }],
        ],
      });
      const catalog = cold('a|', { a: items }).pipe(decodeEvents({ schema: itemEventSchema(limits), limits, now: () => NOW }), map(errors));
      expectObservable(catalog).toBe('a|', {
        a: [
          1,
          ['1', { code: 'schema', message: expect.stringMatching(/^title: text longer than 20 characters, got string "t+/), path: 'title' }],
          ['2', { code: 'schema', message: expect.stringMatching(/^categories: list longer than 2 entries, got /), path: 'categories' }],
          ['3', { code: 'schema', message: expect.stringMatching(/^features\.1: text longer than 20 characters, got string "f+/), path: 'features.1' }],
        ],
      });
    });
  });
});
