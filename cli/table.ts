/** Prints rows as an aligned text table on stdout (columns in the order of the first row's keys). */
export function printTable(rows: ReadonlyArray<Record<string, string | number>>, out: NodeJS.WritableStream = process.stdout): void {
  if (rows.length === 0) return;
  const columns = Object.keys(rows[0] as object);
  const cells = rows.map((r) => columns.map((c) => String(r[c] ?? '')));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((row) => (row[i] as string).length)));
  const line = (values: string[]): string => values.map((v, i) => v.padEnd(widths[i] as number)).join('  ').trimEnd();
  out.write(`${line(columns)}\n${line(widths.map((w) => '-'.repeat(w)))}\n`);
  for (const row of cells) out.write(`${line(row)}\n`);
}
