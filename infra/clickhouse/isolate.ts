/** What a sink said when it refused a row: the first line of its error (ClickHouse appends the rows it parsed), at most 500 characters. */
export function refusalReason(error: Error): string {
  return (error.message.split('\n')[0] ?? '').slice(0, 500);
}

/** A row a sink refused for its content, with the sink's error. */
export interface RefusedRow<T> {
  readonly row: T;
  /** The row's index in the rows given to {@link writeIsolating}. */
  readonly index: number;
  readonly error: Error;
}

/**
 * Writes `rows` with `write`; when the sink refuses them for their content (`refusesContent`:
 * a parse error, a value out of range), halves the batch until the refused rows stand alone, and
 * writes the rest. Returns the refused rows (none when the first write succeeds). Any other
 * failure (the sink is down, a table is missing) rejects as before: it is no row's fault.
 *
 * `k` bad rows among `n` cost about `2k log2(n)` writes. A refused write must have stored nothing
 * (a ClickHouse insert of one block is atomic), or rows written twice must be harmless (the
 * archive tables are ReplacingMergeTree).
 */
export async function writeIsolating<T>(
  write: (rows: readonly T[]) => Promise<void>,
  rows: readonly T[],
  refusesContent: (error: unknown) => boolean,
): Promise<Array<RefusedRow<T>>> {
  const refused: Array<RefusedRow<T>> = [];
  const attempt = async (from: number, to: number): Promise<void> => {
    if (from >= to) return;
    try {
      await write(from === 0 && to === rows.length ? rows : rows.slice(from, to));
    } catch (error) {
      if (!refusesContent(error)) throw error;
      if (to - from === 1) {
        refused.push({ row: rows[from] as T, index: from, error: error as Error });
        return;
      }
      const mid = from + Math.ceil((to - from) / 2);
      await attempt(from, mid);
      await attempt(mid, to);
    }
  };
  await attempt(0, rows.length);
  return refused;
}
