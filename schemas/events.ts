import { z } from 'zod';
import { DEFAULT_LIMITS, type EventLimits } from './limits';

/**
 * Event schemas: what arrives on the interactions and catalog topics. Unknown extra fields are
 * dropped (producers may add fields before consumers know them); known fields are checked
 * strictly. Timestamps are epoch milliseconds; ISO-8601 date-times are accepted and normalised.
 */

export const INTERACTION_TYPES = ['view', 'click', 'add_to_cart', 'purchase', 'rating'] as const;
export const InteractionType = z.enum(INTERACTION_TYPES).describe('What the user did.');
export type InteractionType = z.infer<typeof InteractionType>;

const ISO_DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})$/;

const DAYS_IN_MONTH = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/**
 * What is out of range in an ISO-8601 date-time's fields, or undefined. `Date.parse` rolls an
 * impossible date over (2018-02-30 becomes 2018-03-02) instead of refusing it.
 */
function calendarError(value: string): string | undefined {
  const [date = '', time = ''] = value.split('T');
  const [year, month, day] = date.split('-').map(Number) as [number, number, number];
  if (month < 1 || month > 12) return `month ${month}`;
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  const days = month === 2 && !leap ? 28 : (DAYS_IN_MONTH[month - 1] as number);
  if (day < 1 || day > days) return `day ${day} of a month with ${days}`;
  const [hour, minute, second = 0] = time.slice(0, 8).split(':').map((p) => Number.parseInt(p, 10)) as [number, number, number?];
  if (hour > 23 || minute > 59 || (second as number) > 59) return `time ${time.slice(0, 8)}`;
  const zone = /([+-])(\d{2}):?(\d{2})$/.exec(time);
  if (zone && (Number(zone[2]) > 23 || Number(zone[3]) > 59)) return `zone offset ${zone[0]}`;
  return undefined;
}

/** Epoch milliseconds, or an ISO-8601 date-time with a zone, normalised to epoch milliseconds. */
export const Timestamp = z
  .union([
    z.number().finite(),
    z.string().regex(ISO_DATE_TIME, 'expected epoch milliseconds or an ISO-8601 date-time with a zone (e.g. 2024-05-01T12:00:00Z)'),
  ])
  .transform((value, ctx) => {
    if (typeof value === 'number') return Math.round(value);
    const ms = Date.parse(value);
    const wrong = Number.isNaN(ms) ? 'not a date-time' : calendarError(value);
    if (wrong) {
      ctx.addIssue({ code: 'custom', message: `not a valid date-time: ${JSON.stringify(value)} (${wrong})` });
      return z.NEVER;
    }
    return ms;
  })
  .describe('Event time: epoch milliseconds or ISO-8601.');

/**
 * What an id must not contain: control characters (C0, DEL, C1) and the bidirectional embedding,
 * override and isolate controls, which make an id display as another one.
 */
export const ID_FORBIDDEN = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

/** Whether `value` is an id that {@link interactionEventSchema} accepts (as a string of at most `max` characters). */
export function isValidId(value: unknown, max: number): value is string {
  return typeof value === 'string' && value.length >= 1 && value.length <= max && value.trim().length > 0 && !ID_FORBIDDEN.test(value);
}

function id(limits: EventLimits, what: string) {
  return z
    .string()
    .min(1, `${what} must not be empty`)
    .max(limits.maxIdLength, `${what} is longer than ${limits.maxIdLength} characters`)
    .refine((v) => v.trim().length > 0, `${what} must not be blank`)
    .refine((v) => !ID_FORBIDDEN.test(v), `${what} must not contain control or bidirectional-override characters`)
    .describe(`${what} (opaque string).`);
}

function text(limits: EventLimits) {
  return z.string().max(limits.maxTextLength, `text longer than ${limits.maxTextLength} characters`);
}

function textList(limits: EventLimits) {
  return z.array(text(limits)).max(limits.maxListLength, `list longer than ${limits.maxListLength} entries`);
}

export function interactionEventSchema(limits: EventLimits = DEFAULT_LIMITS) {
  return z
    .object({
      eventId: id(limits, 'eventId'),
      userId: id(limits, 'userId'),
      itemId: id(limits, 'itemId'),
      type: InteractionType,
      value: z.number().finite().optional().describe('Optional strength, e.g. the rating for `rating` events.'),
      ts: Timestamp,
      source: z.string().max(128).optional().describe('Producer or surface the event came from.'),
      context: z
        .record(z.string().max(128), z.union([z.string().max(1024), z.number(), z.boolean(), z.null()]))
        .optional()
        .describe('Free-form flat context (device, page, ...).'),
    })
    .superRefine((event, ctx) => {
      if (event.type === 'rating' && event.value === undefined) {
        ctx.addIssue({ code: 'custom', path: ['value'], message: 'a rating event needs a numeric value' });
      }
    })
    .describe('One user-item interaction.');
}

export const InteractionEvent = interactionEventSchema();
export type InteractionEvent = z.output<typeof InteractionEvent>;

export function itemEventSchema(limits: EventLimits = DEFAULT_LIMITS) {
  return z
    .object({
      itemId: id(limits, 'itemId'),
      ts: Timestamp,
      title: text(limits).optional(),
      brand: text(limits).optional(),
      categories: textList(limits).optional(),
      description: text(limits).optional(),
      features: textList(limits).optional(),
      meta: text(limits)
        .optional()
        .describe('All metadata as one text, for sources that do not separate fields (Amazon Scientific).'),
    })
    .describe('A catalog upsert: the latest metadata of one item.');
}

export const ItemEvent = itemEventSchema();
export type ItemEvent = z.output<typeof ItemEvent>;

/** The text fields of a catalog event, in the order features/ embeds them. */
export const ITEM_TEXT_FIELDS = ['title', 'brand', 'categories', 'description', 'features', 'meta'] as const;
export type ItemTextField = (typeof ITEM_TEXT_FIELDS)[number];

export const DEAD_LETTER_CODES = [
  'invalid_json',
  'schema',
  'too_large',
  'unknown_type',
  'ts_out_of_range',
  'duplicate',
  'late',
  'internal',
  'key_mismatch',
  'sink_refused',
] as const;
export const DeadLetterCode = z.enum(DEAD_LETTER_CODES).describe(
  'Why an event was rejected: invalid_json (not UTF-8 JSON), schema (a field is missing or has the wrong type), ' +
    'too_large (message over maxMessageBytes), unknown_type (interaction type not known), ts_out_of_range (negative ' +
    'or too far in the future), duplicate (eventId seen within the dedupe window), late (older than the out-of-order tolerance), ' +
    'internal (checking the message failed: the error is the message; the consumer goes on), key_mismatch (the message key is ' +
    'absent or is not the userId / itemId: per-key ordering and ownership would break), sink_refused (the archive refused ' +
    'the validated event\'s row, e.g. a value ClickHouse cannot store; its history entry stays).',
);
export type DeadLetterCode = z.infer<typeof DeadLetterCode>;

export const MessageOrigin = z
  .strictObject({
    topic: z.string(),
    partition: z.number().int().nonnegative(),
    offset: z.string().regex(/^\d+$/).describe('Kafka offset as a decimal string.'),
    key: z.string().nullable().describe('Message key as UTF-8, null when absent.'),
  })
  .describe('Where a message came from.');
export type MessageOrigin = z.infer<typeof MessageOrigin>;

export const DeadLetter = z
  .strictObject({
    payload: z.string().describe('The original message value, base64 (the exact bytes as received).'),
    payloadBytes: z.number().int().nonnegative().describe('Size of the original value in bytes.'),
    origin: MessageOrigin,
    error: z.strictObject({
      code: DeadLetterCode,
      message: z.string().describe('Human-readable: what, where, expected vs got.'),
      path: z.string().nullable().describe('The failing field path (e.g. `userId`), null when not about one field.'),
    }),
    failedAt: z.number().int().describe('When the event was rejected (epoch ms).'),
  })
  .describe('An event that could not be applied, with the reason and its origin.');
export type DeadLetter = z.infer<typeof DeadLetter>;
