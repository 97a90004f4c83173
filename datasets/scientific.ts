import path from 'node:path';
import { DatasetError } from '../errors';
import { Random } from '../random';
import type { ItemEvent } from '../schemas/events';
import { columnIndex, readAtomicFile, type AtomicFile } from './atomicFile';
import type { DatasetSplit, LoadedDataset, SplitRow, UserSequence } from './types';

/**
 * Amazon "Industrial and Scientific" as prepared by UniSRec/VQ-Rec: leave-one-out split files
 * with 0-based integer ids (`Scientific.{train,valid,test}.inter`), id maps
 * (`Scientific.item2index`, `Scientific.user2index`) and one text per item (`Scientific.text`).
 *
 * The dataset has no timestamps. {@link SCIENTIFIC_TIMESTAMP_RULE} generates them; the item text
 * is one `meta` field, or split into fields by {@link SCIENTIFIC_TEXT_RULE} on request.
 */
export const SCIENTIFIC_TIMESTAMP_RULE =
  'generated (the dataset has none): seeded Random(seed); users in user2index order each start at ' +
  '2018-01-01T00:00Z + uniform(0, 365 days); each next event of a user comes 1 hour + exponential(mean 7 days) ' +
  'after the previous one. This keeps every user\'s order, and users overlap in time as real shoppers do.';

const START_MS = Date.UTC(2018, 0, 1);
const DAY_MS = 24 * 3600 * 1000;

/**
 * How the one text per item becomes catalog fields: UniSRec wrote it as
 * `"<title>. <categories>. <brand>. "` (categories: the category path joined by spaces, starting
 * at the root category, or empty). {@link splitUniSRecText} undoes that.
 */
export const SCIENTIFIC_TEXT_RULE =
  'text: "fields": the text is "<title>. <categories>. <brand>. "; categories = the last ". "-segment that starts with the root ' +
  'category ("Industrial & Scientific"), or the empty segment of ". . "; title = everything before it (titles may contain ". "); ' +
  'brand = everything after it. A text that fits neither pattern becomes the title alone.';

export interface ScientificOptions {
  /** Seed of the timestamp generator (default 2018). */
  readonly seed?: number;
  /**
   * `merged` (default): the whole text as one `meta` field. `fields`: title, categories and brand
   * as separate catalog fields, embedded one by one (CCFRec's Q-Former then attends over three
   * text vectors); how the two compare on Amazon Scientific is in docs/quality-scientific.md.
   */
  readonly text?: 'fields' | 'merged';
  /** Root of the category paths, which marks where the categories start (default `Industrial & Scientific`). */
  readonly rootCategory?: string;
}

export interface UniSRecTextFields {
  readonly title: string;
  readonly categories: string;
  readonly brand: string;
}

/** Splits one UniSRec item text into title, categories and brand ({@link SCIENTIFIC_TEXT_RULE}). */
export function splitUniSRecText(text: string, rootCategory = 'Industrial & Scientific'): UniSRecTextFields {
  let s = text.trim();
  if (s.endsWith('.')) s = s.slice(0, -1);
  const rooted = s.lastIndexOf(`. ${rootCategory}`);
  if (rooted >= 0) {
    const rest = s.slice(rooted + 2);
    // Category names hold no ". "; brands sometimes do ("Co. Ltd").
    const end = rest.indexOf('. ');
    return end < 0
      ? { title: s.slice(0, rooted).trim(), categories: rest.trim(), brand: '' }
      : { title: s.slice(0, rooted).trim(), categories: rest.slice(0, end).trim(), brand: rest.slice(end + 2).trim() };
  }
  const noCategories = s.lastIndexOf('. . ');
  if (noCategories >= 0) return { title: s.slice(0, noCategories).trim(), categories: '', brand: s.slice(noCategories + 4).trim() };
  return { title: s, categories: '', brand: '' };
}

function catalogEvent(itemId: string, text: string, options: ScientificOptions): ItemEvent {
  const event: ItemEvent = { itemId, ts: START_MS };
  if (!text) return event;
  if (options.text !== 'fields') return { ...event, meta: text };
  const { title, categories, brand } = splitUniSRecText(text, options.rootCategory);
  return {
    ...event,
    ...(title ? { title } : {}),
    ...(categories ? { categories: [categories] } : {}),
    ...(brand ? { brand } : {}),
  };
}

async function readIndexMap(file: string): Promise<string[]> {
  // `raw_id \t index` without a header.
  const { readFile } = await import('node:fs/promises');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (cause) {
    throw new DatasetError(`cannot read ${file}`, { cause, context: { path: file } });
  }
  const byIndex: string[] = [];
  text.split('\n').forEach((line, i) => {
    if (line.length === 0) return;
    const [raw, index] = line.split('\t');
    const n = Number(index);
    if (!raw || !Number.isInteger(n) || n < 0) {
      throw new DatasetError(`${file}:${i + 1}: expected "raw_id<TAB>index", got ${JSON.stringify(line.slice(0, 60))}`);
    }
    byIndex[n] = raw;
  });
  return byIndex;
}

function splitRows(file: AtomicFile, where: string, users: string[], items: string[]): SplitRow[] {
  const u = columnIndex(file, 'user_id', where);
  const h = columnIndex(file, 'item_id_list', where);
  const t = columnIndex(file, 'item_id', where);
  const lookup = (table: string[], value: string | undefined, what: string, line: number): string => {
    const raw = table[Number(value)];
    if (raw === undefined) throw new DatasetError(`${where}:${line}: unknown ${what} index ${JSON.stringify(value)}`);
    return raw;
  };
  return file.rows.map((row) => ({
    userId: lookup(users, row.fields[u], 'user', row.line),
    history: (row.fields[h] ?? '')
      .split(' ')
      .filter((s) => s.length > 0)
      .map((i) => lookup(items, i, 'item', row.line)),
    target: lookup(items, row.fields[t], 'item', row.line),
  }));
}

/**
 * Rebuilds each user's full sequence from the split: training rows are every prefix (newest
 * first in the file), so the oldest row's history followed by every training target in order,
 * then the validation and test targets, is the whole sequence. Checks that each shipped history
 * is a suffix of the rebuilt sequence.
 */
function rebuildSequences(split: DatasetSplit): Map<string, string[]> {
  const trainByUser = new Map<string, SplitRow[]>();
  for (const row of split.train) {
    const list = trainByUser.get(row.userId) ?? [];
    list.push(row);
    trainByUser.set(row.userId, list);
  }
  const sequences = new Map<string, string[]>();
  for (const valid of split.valid) {
    const rows = (trainByUser.get(valid.userId) ?? []).slice().reverse();
    const seq = rows.length > 0 ? [...(rows[0] as SplitRow).history] : [...valid.history];
    for (const row of rows) seq.push(row.target);
    seq.push(valid.target);
    sequences.set(valid.userId, seq);
  }
  for (const test of split.test) {
    const seq = sequences.get(test.userId);
    if (!seq) throw new DatasetError(`Scientific: user ${test.userId} is in the test split but not in the valid split`);
    const prefix = seq.slice(-test.history.length);
    if (prefix.join(' ') !== test.history.join(' ')) {
      throw new DatasetError(`Scientific: test history of user ${test.userId} does not continue the train/valid sequence`);
    }
    seq.push(test.target);
  }
  return sequences;
}

export async function readScientific(dir: string, options: ScientificOptions = {}, name = 'Scientific'): Promise<LoadedDataset> {
  const file = (suffix: string): string => path.join(dir, `${name}.${suffix}`);
  const [items, users] = await Promise.all([readIndexMap(file('item2index')), readIndexMap(file('user2index'))]);
  const readSplit = async (part: 'train' | 'valid' | 'test'): Promise<SplitRow[]> =>
    splitRows(await readAtomicFile(file(`${part}.inter`), ['user_id', 'item_id_list', 'item_id']), file(`${part}.inter`), users, items);
  const split: DatasetSplit = { train: await readSplit('train'), valid: await readSplit('valid'), test: await readSplit('test') };

  const rng = new Random(options.seed ?? 2018);
  const rebuilt = rebuildSequences(split);
  const sequences: UserSequence[] = [];
  for (const userId of users) {
    const itemIds = rebuilt.get(userId);
    if (!itemIds) continue;
    const timestamps: number[] = [];
    let t = START_MS + Math.floor(rng.next() * 365 * DAY_MS);
    for (let i = 0; i < itemIds.length; i++) {
      if (i > 0) t += 3600 * 1000 + Math.floor(rng.exponential(7 * DAY_MS));
      timestamps.push(t);
    }
    sequences.push({ userId, itemIds, timestamps });
  }

  const textFile = await readAtomicFile(file('text'), ['item_id', 'text']);
  const idCol = columnIndex(textFile, 'item_id', file('text'));
  const textCol = columnIndex(textFile, 'text', file('text'));
  // In item2index order, so that a fresh item registry gives item i the dense id i + 1, the
  // numbering of the split files; items the index does not know come last.
  const position = new Map(items.map((raw, i) => [raw, i]));
  const catalog: ItemEvent[] = textFile.rows
    .map((row) => catalogEvent(row.fields[idCol] as string, (row.fields[textCol] ?? '').trim(), options))
    .sort((a, b) => (position.get(a.itemId) ?? Infinity) - (position.get(b.itemId) ?? Infinity));
  return { name: 'scientific', dir, items: catalog, sequences, eventType: 'purchase', split, timestampRule: SCIENTIFIC_TIMESTAMP_RULE };
}
