import type { UserHistory } from '../schemas/history';

/**
 * What serving reads of the users' histories: the rolling history of a user, every history (to
 * count popular items) and whether the view is complete. {@link FreshHistories} (the changelog
 * that ingest writes) is the production one; {@link MemoryHistories} holds histories put into it
 * (tests, a server without live histories).
 */
export interface HistoryView {
  get(userId: string): Pick<UserHistory, 'itemIds' | 'timestamps'> | undefined;
  values(): Iterable<Pick<UserHistory, 'itemIds' | 'timestamps'>>;
  /** Whether everything there was when following began has been read, and how old the newest change is. */
  stats(): { readonly users: number; readonly caughtUp: boolean; readonly newestChangeAgeMs: number | undefined };
}

/** Histories held in memory: `put` replaces a user's. Always caught up. */
export class MemoryHistories implements HistoryView {
  private readonly histories = new Map<string, Pick<UserHistory, 'itemIds' | 'timestamps'>>();

  constructor(private readonly now: () => number = Date.now) {}

  private newest: number | undefined;

  put(userId: string, itemIds: readonly string[], timestamps: readonly number[]): void {
    this.histories.set(userId, { itemIds: [...itemIds], timestamps: [...timestamps] });
    this.newest = this.now();
  }

  get(userId: string): Pick<UserHistory, 'itemIds' | 'timestamps'> | undefined {
    return this.histories.get(userId);
  }

  values(): Iterable<Pick<UserHistory, 'itemIds' | 'timestamps'>> {
    return this.histories.values();
  }

  stats(): { users: number; caughtUp: boolean; newestChangeAgeMs: number | undefined } {
    return { users: this.histories.size, caughtUp: true, newestChangeAgeMs: this.newest === undefined ? undefined : this.now() - this.newest };
  }
}

/**
 * The histories of an ingest running in this process (its history store), read as they are
 * updated: a request sees an event as soon as ingest has applied it (`streamrec run`, the demo).
 * Always caught up; the age of the newest change is not tracked (undefined): the store keeps no
 * change time that serving could read.
 */
export class LocalHistories implements HistoryView {
  constructor(private readonly store: { get(userId: string): Pick<UserHistory, 'itemIds' | 'timestamps'> | undefined; values(): Iterable<Pick<UserHistory, 'itemIds' | 'timestamps'>>; readonly size: number }) {}

  get(userId: string): Pick<UserHistory, 'itemIds' | 'timestamps'> | undefined {
    return this.store.get(userId);
  }

  values(): Iterable<Pick<UserHistory, 'itemIds' | 'timestamps'>> {
    return this.store.values();
  }

  stats(): { users: number; caughtUp: boolean; newestChangeAgeMs: number | undefined } {
    return { users: this.store.size, caughtUp: true, newestChangeAgeMs: undefined };
  }
}
