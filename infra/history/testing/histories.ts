import { emptyHistory, type UserHistory } from '../../../schemas/history';

/**
 * A small valid history for store and follower tests: `items` in order with timestamps from
 * 1000, one session, and `offset` as the highest applied offset of `interactions/<partition>`.
 */
export function testHistory(userId: string, partition: number, items: string[], offset: number, updatedAt = 5): UserHistory {
  return {
    ...emptyHistory(userId, partition),
    itemIds: items,
    timestamps: items.map((_, i) => 1000 + i),
    eventIds: items.map((i) => `e-${userId}-${i}`),
    newestTs: 1000 + items.length - 1,
    session: { index: 0, startTs: 1000, lastTs: 1000 + items.length - 1 },
    offsets: { [`interactions/${partition}`]: offset },
    updatedAt,
  };
}
