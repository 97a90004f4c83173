import { yieldToEventLoop } from '../infra/slices';
import { createLogger } from '../logging';
import type { HistoryView } from './historyView';
import type { UserHistory } from '../schemas/history';

const log = createLogger('serving.popular');

/** Histories walked between two turns of the event loop while counting. */
const HISTORIES_PER_SLICE = 5000;

export interface PopularItemsOptions {
  /** Window of event time, back from the newest event in the histories, whose interactions count. */
  readonly windowMs: number;
  /** How often the items are counted again. */
  readonly refreshMs: number;
  /** Items kept, most interactions first. */
  readonly keep: number;
}

/**
 * The popular-items fallback: the items with the most interactions in a recent window of event
 * time (back from the newest event in the histories), counted over every user's rolling history.
 * What a user with no history gets. Counted off the request path: at construction and every
 * `refreshMs` on a timer, a slice of histories at a time with the event loop let in between
 * (millions of histories would otherwise hold it for as long as the walk takes); a request reads
 * the last finished count and never walks the histories itself.
 */
export class PopularItems {
  private items: ReadonlyArray<{ itemId: string; count: number }> = [];
  private counting: Promise<void> | undefined;
  private readonly timer: ReturnType<typeof setInterval>;
  private readonly early: ReturnType<typeof setInterval>;

  constructor(
    private readonly histories: HistoryView,
    private readonly options: PopularItemsOptions,
  ) {
    const recount = (): void => void this.refresh().catch((error: unknown) => log.error({ err: error }, 'counting the popular items failed; the last count is kept'));
    recount();
    this.timer = setInterval(recount, options.refreshMs);
    this.timer.unref();
    // A server that starts before its histories are read finds nothing at first: until a count
    // finds items, it counts again every second instead of every refreshMs.
    this.early = setInterval(() => (this.items.length > 0 ? clearInterval(this.early) : recount()), Math.min(1000, options.refreshMs));
    this.early.unref();
  }

  /** The top items of the last finished count, most interactions first (ties: item id order), at most `keep`. */
  top(): ReadonlyArray<{ itemId: string; count: number }> {
    return this.items;
  }

  /** Counts again (a count under way is joined); resolves once its result is what {@link top} returns. */
  refresh(): Promise<void> {
    this.counting ??= this.count().then(
      (items) => {
        this.items = items;
        this.counting = undefined;
      },
      (error: unknown) => {
        this.counting = undefined;
        throw error;
      },
    );
    return this.counting;
  }

  /** Stops the timer (a count under way still finishes). */
  close(): void {
    clearInterval(this.timer);
    clearInterval(this.early);
  }

  /** Calls `visit` with every history, letting the event loop in after every HISTORIES_PER_SLICE. */
  private async eachHistory(visit: (history: Pick<UserHistory, 'itemIds' | 'timestamps'>) => void): Promise<void> {
    let walked = 0;
    for (const h of this.histories.values()) {
      visit(h);
      if (++walked % HISTORIES_PER_SLICE === 0) await yieldToEventLoop();
    }
  }

  private async count(): Promise<Array<{ itemId: string; count: number }>> {
    let newest = Number.NEGATIVE_INFINITY;
    await this.eachHistory((h) => {
      const last = h.timestamps[h.timestamps.length - 1];
      if (last !== undefined && last > newest) newest = last;
    });
    const from = newest - this.options.windowMs;
    const counts = new Map<string, number>();
    await this.eachHistory((h) => {
      for (let i = h.itemIds.length - 1; i >= 0 && (h.timestamps[i] as number) >= from; i--) {
        const id = h.itemIds[i] as string;
        counts.set(id, (counts.get(id) ?? 0) + 1);
      }
    });
    return [...counts]
      .map(([itemId, count]) => ({ itemId, count }))
      .sort((a, b) => b.count - a.count || (a.itemId < b.itemId ? -1 : a.itemId > b.itemId ? 1 : 0))
      .slice(0, this.options.keep);
  }
}
