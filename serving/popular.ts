import type { HistoryView } from './historyView';

/**
 * The popular-items fallback: the items with the most interactions in a recent window of event
 * time (back from the newest event in the histories), counted over every user's rolling history
 * and cached for `refreshMs`. What a user with no history gets.
 */
export class PopularItems {
  private cached: { readonly at: number; readonly items: ReadonlyArray<{ itemId: string; count: number }> } | undefined;

  constructor(
    private readonly histories: HistoryView,
    private readonly options: { readonly windowMs: number; readonly refreshMs: number; readonly keep: number; readonly now?: () => number },
  ) {}

  /** The top items, most interactions first (ties: item id order), at most `keep`. */
  top(): ReadonlyArray<{ itemId: string; count: number }> {
    const now = (this.options.now ?? Date.now)();
    if (this.cached && now - this.cached.at < this.options.refreshMs) return this.cached.items;
    this.cached = { at: now, items: this.count() };
    return this.cached.items;
  }

  private count(): Array<{ itemId: string; count: number }> {
    let newest = Number.NEGATIVE_INFINITY;
    for (const h of this.histories.values()) {
      const last = h.timestamps[h.timestamps.length - 1];
      if (last !== undefined && last > newest) newest = last;
    }
    const from = newest - this.options.windowMs;
    const counts = new Map<string, number>();
    for (const h of this.histories.values()) {
      for (let i = h.itemIds.length - 1; i >= 0 && (h.timestamps[i] as number) >= from; i--) {
        const id = h.itemIds[i] as string;
        counts.set(id, (counts.get(id) ?? 0) + 1);
      }
    }
    return [...counts]
      .map(([itemId, count]) => ({ itemId, count }))
      .sort((a, b) => b.count - a.count || (a.itemId < b.itemId ? -1 : a.itemId > b.itemId ? 1 : 0))
      .slice(0, this.options.keep);
  }
}
