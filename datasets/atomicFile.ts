import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { DatasetError } from '../errors';

/**
 * Reader for RecBole atomic files: tab-separated, first line `name:type` per column
 * (`user_id:token  item_id:token  rating:float ...`).
 */
export interface AtomicRow {
  readonly line: number;
  readonly fields: string[];
}

export interface AtomicFile {
  readonly columns: string[];
  readonly rows: AtomicRow[];
}

/** Reads the whole file; checks that every row has as many fields as the header. */
export async function readAtomicFile(file: string, expectedColumns?: readonly string[]): Promise<AtomicFile> {
  const rl = createInterface({ input: createReadStream(file, { encoding: 'utf8' }), crlfDelay: Infinity });
  let columns: string[] | undefined;
  const rows: AtomicRow[] = [];
  let line = 0;
  try {
    for await (const text of rl) {
      line++;
      if (text.length === 0) continue;
      const fields = text.split('\t');
      if (!columns) {
        columns = fields.map((f) => f.split(':')[0] ?? f);
        if (expectedColumns) {
          const missing = expectedColumns.filter((c) => !columns!.includes(c));
          if (missing.length > 0) {
            throw new DatasetError(`${file}: header lacks column(s) ${missing.join(', ')} (header: ${fields.join(' | ')})`, {
              context: { path: file },
            });
          }
        }
        continue;
      }
      // Trailing empty text fields are allowed (Scientific.text rows may end with a tab).
      if (fields.length < columns.length) {
        throw new DatasetError(`${file}:${line}: expected ${columns.length} tab-separated fields, got ${fields.length}`, {
          context: { path: file, line },
        });
      }
      rows.push({ line, fields });
    }
  } catch (cause) {
    if (cause instanceof DatasetError) throw cause;
    throw new DatasetError(`cannot read ${file}`, { cause, context: { path: file } });
  }
  if (!columns) throw new DatasetError(`${file} is empty (expected a header line)`, { context: { path: file } });
  return { columns, rows };
}

/** Index of a column, with a clear error when it is missing. */
export function columnIndex(file: AtomicFile, name: string, where: string): number {
  const i = file.columns.indexOf(name);
  if (i < 0) throw new DatasetError(`${where}: no column ${name} (columns: ${file.columns.join(', ')})`);
  return i;
}
