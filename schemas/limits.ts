import { z } from 'zod';

/**
 * Size and range limits that are part of the event schemas. They are enforced at the ingest
 * boundary with clear errors (dead letters), and can be tightened or loosened per deployment
 * through the ingest config (`ingest.limits`).
 */
export const EventLimits = z
  .strictObject({
    maxIdLength: z.number().int().min(1).max(4096).default(256).describe('Longest eventId, userId or itemId, in characters.'),
    maxTextLength: z
      .number()
      .int()
      .min(1)
      .default(20_000)
      .describe('Longest text field of a catalog event (title, description, ...), in characters.'),
    maxListLength: z.number().int().min(1).default(200).describe('Most entries in a list field (categories, features).'),
    maxMessageBytes: z
      .number()
      .int()
      .min(64)
      .default(64 * 1024)
      .describe('Largest accepted message value in bytes; larger ones are dead-lettered as `too_large`.'),
    maxFutureSkewMs: z
      .number()
      .int()
      .nonnegative()
      .default(24 * 3600 * 1000)
      .describe('How far ahead of the wall clock an event timestamp may be before it is rejected as `ts_out_of_range`.'),
  })
  .describe('Limits enforced on every incoming event.');
export type EventLimits = z.infer<typeof EventLimits>;

export const DEFAULT_LIMITS: EventLimits = EventLimits.parse({});
