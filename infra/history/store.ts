import { partitionKey, type UserHistory } from '../../schemas/history';

/** Changed histories serialised at one moment, ready to be written (see {@link HistoryStore.prepareFlush}). */
export interface PreparedHistories {
  readonly count: number;
  /** Writes them durably. */
  write(): Promise<void>;
}

export interface RestoreStats {
  readonly records: number;
  readonly users: number;
  readonly invalid: number;
  readonly ms: number;
}

/**
 * Where per-user rolling histories live. The ingest operators read and write it synchronously
 * (`get`/`put` work on process memory); `flush` makes what changed durable; `restore` loads
 * the durable state after a restart. Implementations: {@link MemoryHistoryStore} (one process)
 * and `ChangelogHistoryStore` (a Kafka changelog topic that a restarted process, and serving,
 * read back).
 */
export interface HistoryStore {
  readonly kind: 'memory' | 'changelog';
  /** The live history (updated in place by ingest; copy it to keep a snapshot). */
  get(userId: string): UserHistory | undefined;
  put(history: UserHistory): void;
  getSession(userId: string): UserHistory['session'] | undefined;
  setSession(userId: string, session: UserHistory['session']): void;
  /** Highest offset of `topic/partition` applied to the user's history, -1 when none. */
  appliedOffset(userId: string, topic: string, partition: number): number;
  /**
   * At least the highest offset of `topic/partition` applied to any history held (-1 when none):
   * a batch that starts above it holds no redelivery, so its events need no per-user check.
   */
  highestApplied(topic: string, partition: number): number;
  /** Makes every change since the last flush durable (one record per user touched). */
  flush(): Promise<number>;
  /**
   * Serialises every change since the last flush now (synchronously) and clears the change
   * set; the returned write can then run while processing goes on.
   */
  prepareFlush(): PreparedHistories;
  /** Loads the durable state; for a changelog, the given source partitions (default: all). */
  restore(partitions?: readonly number[]): Promise<RestoreStats>;
  /** Forgets users whose newest event came from these partitions, with their unflushed changes. */
  dropPartitions(partitions: readonly number[]): number;
  readonly size: number;
  values(): IterableIterator<UserHistory>;
  close(): Promise<void>;
}

/** In-process state shared by the implementations: the map plus the set of users changed since the last flush. */
export abstract class BaseHistoryStore implements HistoryStore {
  abstract readonly kind: 'memory' | 'changelog';
  protected readonly histories = new Map<string, UserHistory>();
  protected readonly dirty = new Set<string>();
  /** `topic/partition` -> highest offset applied to any history (never lowered: see {@link highestApplied}). */
  private readonly highWater = new Map<string, number>();

  get(userId: string): UserHistory | undefined {
    return this.histories.get(userId);
  }

  put(history: UserHistory): void {
    this.hold(history);
    this.dirty.add(history.userId);
  }

  getSession(userId: string): UserHistory['session'] | undefined {
    const h = this.histories.get(userId);
    return h && h.itemIds.length > 0 ? h.session : undefined;
  }

  setSession(userId: string, session: UserHistory['session']): void {
    const h = this.histories.get(userId);
    if (!h) return; // sessions are kept only for users with a history
    h.session = session;
    this.dirty.add(userId);
  }

  appliedOffset(userId: string, topic: string, partition: number): number {
    return this.histories.get(userId)?.offsets[partitionKey(topic, partition)] ?? -1;
  }

  highestApplied(topic: string, partition: number): number {
    return this.highWater.get(partitionKey(topic, partition)) ?? -1;
  }

  /**
   * Keeps `history` as the current one of `userId` (a changelog record's key when restoring),
   * raising the high-water marks to its applied offsets: every history taken in (ingested or
   * restored) goes through here.
   */
  protected hold(history: UserHistory, userId = history.userId): void {
    this.histories.set(userId, history);
    for (const key in history.offsets) {
      const offset = history.offsets[key] as number;
      if (offset > (this.highWater.get(key) ?? -1)) this.highWater.set(key, offset);
    }
  }

  dropPartitions(partitions: readonly number[]): number {
    const drop = new Set(partitions);
    let n = 0;
    for (const [userId, h] of this.histories) {
      if (drop.has(h.partition)) {
        this.histories.delete(userId);
        this.dirty.delete(userId);
        n++;
      }
    }
    return n;
  }

  get size(): number {
    return this.histories.size;
  }

  values(): IterableIterator<UserHistory> {
    return this.histories.values();
  }

  async flush(): Promise<number> {
    const prepared = this.prepareFlush();
    await prepared.write();
    return prepared.count;
  }

  abstract prepareFlush(): PreparedHistories;
  abstract restore(partitions?: readonly number[]): Promise<RestoreStats>;
  abstract close(): Promise<void>;
}

/** Histories in process memory only: lost on restart. For tests, demos and single runs. */
export class MemoryHistoryStore extends BaseHistoryStore {
  readonly kind = 'memory' as const;

  prepareFlush(): PreparedHistories {
    const count = this.dirty.size;
    this.dirty.clear();
    return { count, write: async () => {} };
  }

  async restore(): Promise<RestoreStats> {
    return { records: 0, users: this.histories.size, invalid: 0, ms: 0 };
  }

  async close(): Promise<void> {}
}
