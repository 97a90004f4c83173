import { z } from 'zod';

/**
 * A user's rolling history: the value of the history changelog topic (key = userId) and what
 * serving reads. Entries are parallel arrays ordered by event time, oldest first.
 */
export const UserHistory = z
  .strictObject({
    userId: z.string().min(1),
    itemIds: z.array(z.string()).describe('Most recent items, oldest first.'),
    timestamps: z.array(z.number().int()).describe('Event time (epoch ms) of each item.'),
    eventIds: z.array(z.string()).describe('Event id of each item (de-duplication after a restart).'),
    newestTs: z.number().int().describe('Newest event time ever applied for the user (the lateness reference).'),
    session: z
      .strictObject({
        index: z.number().int().nonnegative().describe('0-based number of the current session.'),
        startTs: z.number().int().describe('Event time of the session\'s first event.'),
        lastTs: z.number().int().describe('Event time of the session\'s newest event.'),
      })
      .describe('The current session.'),
    offsets: z
      .record(z.string(), z.number().int().nonnegative())
      .describe('`topic/partition` -> highest source offset applied: redeliveries at or below it are skipped.'),
    partition: z.number().int().nonnegative().describe('Source partition of the newest event (the changelog partition).'),
    updatedAt: z.number().int().describe('Wall-clock time of the last change (epoch ms).'),
  })
  .superRefine((h, ctx) => {
    if (h.itemIds.length !== h.timestamps.length || h.itemIds.length !== h.eventIds.length) {
      ctx.addIssue({
        code: 'custom',
        message: `itemIds (${h.itemIds.length}), timestamps (${h.timestamps.length}) and eventIds (${h.eventIds.length}) must have equal lengths`,
      });
    }
  })
  .describe('A user\'s rolling history.');
export type UserHistory = z.infer<typeof UserHistory>;

const partitionKeys = new Map<string, string[]>();

/** The key of a source partition in {@link UserHistory.offsets} (memoised: called per event). */
export function partitionKey(topic: string, partition: number): string {
  let keys = partitionKeys.get(topic);
  if (!keys) {
    keys = [];
    partitionKeys.set(topic, keys);
  }
  return (keys[partition] ??= `${topic}/${partition}`);
}

export function emptyHistory(userId: string, partition: number): UserHistory {
  return {
    userId,
    itemIds: [],
    timestamps: [],
    eventIds: [],
    newestTs: Number.MIN_SAFE_INTEGER,
    session: { index: 0, startTs: 0, lastTs: Number.MIN_SAFE_INTEGER },
    offsets: {},
    partition,
    updatedAt: 0,
  };
}
