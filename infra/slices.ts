/**
 * Long synchronous work cut into slices with the event loop let in between: a server that loads
 * a new model version beside live traffic (a hot swap) stalls its requests one slice at a time.
 */

/** Resolves on the event loop's next check phase (after pending I/O callbacks). */
export function yieldToEventLoop(): Promise<void> {
  return new Promise<void>((resolve) => setImmediate(resolve));
}

/**
 * Calls `step(from, to)` for consecutive ranges of `[0, total)` of at most `slice` units each, in
 * order, yielding to the event loop between them (not before the first).
 */
export async function inSlices(total: number, slice: number, step: (from: number, to: number) => void): Promise<void> {
  if (!Number.isInteger(slice) || slice < 1) throw new RangeError(`inSlices: slice must be a positive integer, got ${slice}`);
  for (let from = 0; from < total; from += slice) {
    if (from > 0) await yieldToEventLoop();
    step(from, Math.min(total, from + slice));
  }
}
