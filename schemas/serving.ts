import { z } from 'zod';

/**
 * Settings of the serving stage (`serving` in the streamrec config): the HTTP API's limits, the
 * popular-items fallback, model reloads and the admin key. Strict; every key has a default.
 */
export const ServingConfig = z
  .strictObject({
    host: z.string().min(1).default('127.0.0.1').describe('Interface the HTTP server listens on (0.0.0.0: every interface).'),
    port: z.number().int().min(0).max(65_535).default(8080).describe('HTTP port (0: any free port).'),
    defaultK: z.number().int().min(1).max(200).default(10).describe('Items returned when a request names no k.'),
    maxK: z.number().int().min(1).max(1000).default(200).describe('Largest k a request may ask for.'),
    maxHistoryItems: z
      .number()
      .int()
      .min(1)
      .default(1000)
      .describe('Most item ids a stateless request may send as its history (the model reads only the most recent ones).'),
    maxIdLength: z.number().int().min(1).max(4096).default(256).describe('Longest user or item id a request may carry, in characters.'),
    maxQueryLength: z.number().int().min(1).default(2000).describe('Longest free-text search query, in characters.'),
    bodyLimitBytes: z.number().int().min(1024).default(256 * 1024).describe('Largest request body; larger ones are refused with 413.'),
    popularWindowMs: z
      .number()
      .int()
      .positive()
      .default(7 * 24 * 3600 * 1000)
      .describe('Window of event time (back from the newest event seen) over which the popular-items fallback counts interactions.'),
    popularRefreshMs: z.number().int().positive().default(30_000).describe('How often the popular items are counted again.'),
    reloadPollMs: z.number().int().positive().default(1000).describe('How often the model registry is checked for a new live version.'),
    adminApiKey: z
      .string()
      .default('')
      .describe('Key that admin endpoints require in the `x-api-key` header (compared in constant time); empty: admin endpoints are disabled.'),
    readyMaxStalenessMs: z
      .number()
      .int()
      .nonnegative()
      .default(0)
      .describe('With a value above 0, /readyz fails while the newest history change is older than this (0: only the catch-up is checked).'),
    shutdownGraceMs: z.number().int().positive().default(10_000).describe('How long a shutdown waits for requests in flight before closing.'),
  })
  .describe('The serving stage: recommendations over HTTP.');
export type ServingConfig = z.infer<typeof ServingConfig>;
