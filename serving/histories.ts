import type { Kafka } from 'kafkajs';
import { KafkaError } from '../errors';
import { followChangelog, topicEnds } from '../infra/history';
import { createLogger } from '../logging';
import type { UserHistory } from '../schemas/history';

const log = createLogger('serving.histories');

export interface FreshHistoriesOptions {
  readonly kafka: Kafka;
  /** The history changelog that ingest writes (`ingest.topics.changelog`). */
  readonly topic: string;
  /** Wall clock (tests pass a fixed one). */
  readonly now?: () => number;
}

export interface FreshHistoriesStats {
  /** Users with a history. */
  readonly users: number;
  /** Changelog records applied since following began. */
  readonly records: number;
  /** True once everything in the changelog when following began has been read. */
  readonly caughtUp: boolean;
  /**
   * How long ago ingest made the newest history read here (`updatedAt`, ingest's clock): how
   * stale serving's view is when the stream is busy. Undefined before the first record.
   */
  readonly newestChangeAgeMs: number | undefined;
}

/**
 * The users' rolling histories as serving reads them: a follower of the history changelog that
 * ingest writes (one record per user changed per flush), kept in memory and updated as records
 * arrive, so a recommendation request sees a user's events a flush after they were ingested.
 * Several serving processes can follow the same changelog; none of them commits offsets.
 *
 * @example
 * const histories = await FreshHistories.follow({ kafka, topic: 'streamrec.histories' });
 * await histories.caughtUp(30_000);
 * const recent = histories.get('u42')?.itemIds ?? [];
 */
export class FreshHistories {
  private readonly histories = new Map<string, UserHistory>();
  private records = 0;
  private newestUpdatedAt: number | undefined;
  private caughtUpWaiters: Array<() => void> = [];
  private follower: { stop(): Promise<void> } | undefined;

  private constructor(
    private readonly options: FreshHistoriesOptions,
    /** Partition -> end offset when following began, for partitions not yet read that far. */
    private readonly behind: Map<number, number>,
  ) {}

  /** Starts following from the beginning of the changelog; see {@link caughtUp} for when the view is complete. */
  static async follow(options: FreshHistoriesOptions): Promise<FreshHistories> {
    const histories = new FreshHistories(options, await topicEnds(options.kafka, options.topic));
    histories.follower = await followChangelog(options.kafka, options.topic, {
      current: (userId) => histories.histories.get(userId),
      onHistory: (userId, h) => histories.apply(userId, h),
      onProgress: (partition, next) => histories.progress(partition, next),
    });
    log.info({ topic: options.topic, partitionsToCatchUp: histories.behind.size }, 'following the history changelog');
    return histories;
  }

  /** The user's latest history (live object: copy it to keep a snapshot), or undefined. */
  get(userId: string): UserHistory | undefined {
    return this.histories.get(userId);
  }

  get size(): number {
    return this.histories.size;
  }

  /** Every user's history (live objects), in no particular order. */
  values(): IterableIterator<UserHistory> {
    return this.histories.values();
  }

  /**
   * Resolves once every record that was in the changelog when following began has been read
   * (at once for an empty changelog); rejects after `timeoutMs` with how many partitions are
   * still behind.
   */
  caughtUp(timeoutMs = 60_000): Promise<void> {
    if (this.behind.size === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.caughtUpWaiters = this.caughtUpWaiters.filter((w) => w !== done);
        reject(
          new KafkaError(`history changelog ${this.options.topic}: not caught up after ${timeoutMs} ms (${this.behind.size} partitions behind)`, {
            retriable: true,
            context: { topic: this.options.topic },
          }),
        );
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        resolve();
      };
      this.caughtUpWaiters.push(done);
    });
  }

  stats(): FreshHistoriesStats {
    const now = (this.options.now ?? Date.now)();
    return {
      users: this.histories.size,
      records: this.records,
      caughtUp: this.behind.size === 0,
      newestChangeAgeMs: this.newestUpdatedAt === undefined ? undefined : now - this.newestUpdatedAt,
    };
  }

  async stop(): Promise<void> {
    const follower = this.follower;
    this.follower = undefined;
    await follower?.stop();
  }

  private apply(userId: string, history: UserHistory | null): void {
    this.records++;
    if (history === null) {
      this.histories.delete(userId);
      return;
    }
    this.histories.set(userId, history);
    if (this.newestUpdatedAt === undefined || history.updatedAt > this.newestUpdatedAt) this.newestUpdatedAt = history.updatedAt;
  }

  private progress(partition: number, next: number): void {
    const end = this.behind.get(partition);
    if (end === undefined || next < end) return;
    this.behind.delete(partition);
    if (this.behind.size > 0) return;
    log.info({ topic: this.options.topic, users: this.histories.size, records: this.records }, 'history changelog caught up');
    const waiters = this.caughtUpWaiters;
    this.caughtUpWaiters = [];
    for (const w of waiters) w();
  }
}
