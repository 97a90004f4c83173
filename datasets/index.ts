import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { DatasetError } from '../errors';
import type { InteractionEvent, ItemEvent } from '../schemas/events';
import { packageRoot } from '../version';
import { readMovieLens } from './movielens';
import { readScientific, type ScientificOptions } from './scientific';
import { generateSyntheticWorld } from './synthetic';
import { isSyntheticSpec, parseSyntheticSpec } from './syntheticOptions';
import type { LoadedDataset } from './types';

export type { DatasetSplit, LoadedDataset, SplitRow, UserSequence } from './types';
export { readMovieLens } from './movielens';
export { readScientific, SCIENTIFIC_TIMESTAMP_RULE } from './scientific';
export { readAtomicFile } from './atomicFile';
export { loadArchiveDataset } from './archive';
export {
  generateSyntheticWorld,
  type SyntheticItemTruth,
  type SyntheticLineTruth,
  type SyntheticTruth,
  type SyntheticUserTruth,
  type SyntheticWorld,
  type TasteSwitch,
} from './synthetic';
export {
  isSyntheticSpec,
  parseSyntheticSpec,
  resolveSyntheticOptions,
  SYNTHETIC_NAME,
  SyntheticOptions,
  type ResolvedSyntheticOptions,
} from './syntheticOptions';
export { SYNTHETIC_TOPICS, type SyntheticTopic } from './syntheticVocabulary';

/** Where named datasets live: `STREAMREC_DATASETS_DIR`, else `../shared/datasets` beside the package. */
export function datasetsRoot(): string {
  return process.env.STREAMREC_DATASETS_DIR ?? path.resolve(packageRoot(), '..', 'shared', 'datasets');
}

/** Resolves `ml-100k`, `scientific` or a directory path to a directory (the built-in `synthetic` has none). */
export function resolveDatasetDir(nameOrDir: string): string {
  if (existsSync(nameOrDir) && statSync(nameOrDir).isDirectory()) return path.resolve(nameOrDir);
  const named = path.join(datasetsRoot(), nameOrDir);
  if (existsSync(named) && statSync(named).isDirectory()) return named;
  throw new DatasetError(
    `dataset ${JSON.stringify(nameOrDir)} is neither a directory nor a dataset under ${datasetsRoot()} ` +
      `(set STREAMREC_DATASETS_DIR or pass a directory, or use the built-in world "synthetic", e.g. "synthetic:users=500,seed=3")`,
  );
}

/**
 * Loads a dataset. `synthetic` or `synthetic:<key>=<value>,...` (e.g. `synthetic:users=500,seed=3`)
 * generates the built-in synthetic world in memory, touching no file (see synthetic.ts; a
 * directory of that name needs a path such as `./synthetic`). Anything else is a dataset directory,
 * recognised by its files: `<name>.inter` + `<name>.item` (MovieLens-style, with timestamps) or
 * `<name>.{train,valid,test}.inter` + `<name>.text` (UniSRec-style Amazon split).
 */
export async function loadDataset(nameOrDir: string, options: ScientificOptions = {}): Promise<LoadedDataset> {
  if (isSyntheticSpec(nameOrDir)) return generateSyntheticWorld(parseSyntheticSpec(nameOrDir)).dataset;
  const dir = resolveDatasetDir(nameOrDir);
  const files = readdirSync(dir);
  const split = files.find((f) => f.endsWith('.test.inter'));
  if (split) {
    const name = split.slice(0, -'.test.inter'.length);
    return readScientific(dir, options, name);
  }
  const inter = files.find((f) => f.endsWith('.inter'));
  if (inter && files.includes(inter.replace(/\.inter$/, '.item'))) {
    return readMovieLens(dir, inter.slice(0, -'.inter'.length));
  }
  throw new DatasetError(
    `${dir}: unrecognised dataset layout (expected <name>.inter + <name>.item, or <name>.{train,valid,test}.inter + <name>.text); found ${files.join(', ')}`,
  );
}

/** One replayable event: a catalog upsert or an interaction. */
export type ReplayEvent = { readonly kind: 'item'; readonly event: ItemEvent } | { readonly kind: 'interaction'; readonly event: InteractionEvent };

/** Deterministic event id of the n-th interaction of a user in a dataset. */
export function datasetEventId(dataset: string, userId: string, position: number): string {
  return `${dataset}:${userId}:${position}`;
}

/**
 * The dataset as an event stream: all catalog events first, then every interaction in global
 * time order (ties broken by user order, then position), so that each user's order is kept.
 */
export function* datasetEvents(dataset: LoadedDataset): Generator<ReplayEvent> {
  for (const item of dataset.items) yield { kind: 'item', event: item };
  // k-way merge of the per-user sequences by timestamp.
  const heads = dataset.sequences.map((_, u) => ({ u, i: 0 }));
  const key = (h: { u: number; i: number }): number => dataset.sequences[h.u]!.timestamps[h.i]!;
  const heap = new MinHeap(heads.filter((h) => dataset.sequences[h.u]!.itemIds.length > 0), (a, b) => key(a) - key(b) || a.u - b.u);
  while (heap.size > 0) {
    const head = heap.pop()!;
    const seq = dataset.sequences[head.u]!;
    const value = seq.values?.[head.i];
    yield {
      kind: 'interaction',
      event: {
        eventId: datasetEventId(dataset.name, seq.userId, head.i),
        userId: seq.userId,
        itemId: seq.itemIds[head.i]!,
        type: dataset.eventType,
        ...(value !== undefined && dataset.eventType === 'rating' ? { value } : {}),
        ts: seq.timestamps[head.i]!,
        source: `replay:${dataset.name}`,
      },
    };
    if (head.i + 1 < seq.itemIds.length) heap.push({ u: head.u, i: head.i + 1 });
  }
}

/** Count of interactions in a dataset. */
export function interactionCount(dataset: LoadedDataset): number {
  return dataset.sequences.reduce((n, s) => n + s.itemIds.length, 0);
}

class MinHeap<T> {
  private readonly items: T[] = [];
  constructor(
    initial: T[],
    private readonly less: (a: T, b: T) => number,
  ) {
    for (const x of initial) this.push(x);
  }
  get size(): number {
    return this.items.length;
  }
  push(x: T): void {
    const a = this.items;
    a.push(x);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (this.less(a[i]!, a[p]!) >= 0) break;
      [a[i], a[p]] = [a[p]!, a[i]!];
      i = p;
    }
  }
  pop(): T | undefined {
    const a = this.items;
    if (a.length === 0) return undefined;
    const top = a[0];
    const last = a.pop()!;
    if (a.length > 0) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && this.less(a[l]!, a[m]!) < 0) m = l;
        if (r < a.length && this.less(a[r]!, a[m]!) < 0) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m]!, a[i]!];
        i = m;
      }
    }
    return top;
  }
}
