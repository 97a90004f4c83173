import type { LoadedDataset } from '../../datasets';
import { Random } from '../../random';
import { parseTrainerConfig, type TrainerConfig } from '../config';
import { examplesFrom, type LeaveOneOutData } from '../data';
import type { ItemSideInfo } from '../sideInfo';

/**
 * Tiny fixtures for trainer tests: random side information and synthetic sequences with a
 * learnable pattern (mostly "next item = previous + 1"), small enough for a few-second test.
 */

export interface TinySizes {
  readonly items: number;
  readonly levels: number;
  readonly codesPerLevel: number;
  readonly dims: number;
  readonly fields: number;
}

export const TINY: TinySizes = { items: 30, levels: 2, codesPerLevel: 8, dims: 16, fields: 1 };

/** Random side information: normal text tables (row 0 zeros) and uniform code digits. */
export function tinySideInfo(seed = 1, sizes: TinySizes = TINY): ItemSideInfo {
  const rng = new Random(seed);
  const n = sizes.items;
  const textFields = Array.from({ length: sizes.fields }, (_, f) => {
    const table = new Float32Array((n + 1) * sizes.dims);
    for (let i = sizes.dims; i < table.length; i++) table[i] = rng.normal();
    return { name: f === 0 ? 'meta' : `field${f}`, dims: sizes.dims, table };
  });
  const codes = new Int32Array((n + 1) * sizes.levels);
  for (let i = sizes.levels; i < codes.length; i++) codes[i] = rng.int(sizes.codesPerLevel);
  return {
    itemCount: n,
    textFields,
    codes: { levels: sizes.levels, codesPerLevel: sizes.codesPerLevel, table: codes },
    artifactIds: { semanticIds: 'semantic_ids-0123456789abcdef', textEmbeddings: { meta: 'embeddings-0123456789abcdef' } },
  };
}

/**
 * {@link tinySideInfo} with texts that predict the walks of {@link tinyData} / {@link tinyDataset}:
 * item i's text lies at angle 2 pi i / N on a circle (plus a little noise), so the next item of a
 * walk is a close text neighbour of the current one and the text prior has something to add.
 */
export function walkTextSideInfo(seed = 1, sizes: TinySizes = TINY): ItemSideInfo {
  const info = tinySideInfo(seed, sizes);
  const rng = new Random(seed + 1);
  const n = sizes.items;
  const textFields = info.textFields.map((f) => {
    const table = new Float32Array((n + 1) * f.dims);
    for (let i = 1; i <= n; i++) {
      table[i * f.dims] = Math.cos((2 * Math.PI * i) / n);
      table[i * f.dims + 1] = Math.sin((2 * Math.PI * i) / n);
      for (let k = 2; k < f.dims; k++) table[i * f.dims + k] = 0.05 * rng.normal();
    }
    return { ...f, table };
  });
  return { ...info, textFields };
}

/**
 * Users walking the catalog: each starts at a random item and mostly steps to the next id
 * (wrapping), sometimes jumps. Leave-one-out: every prefix trains, the last two are valid/test.
 */
export function tinyData(seed = 2, users = 40, itemCount = TINY.items, length = 8): LeaveOneOutData {
  const rng = new Random(seed);
  const train: Array<{ history: number[]; target: number }> = [];
  const valid: Array<{ history: number[]; target: number }> = [];
  const test: Array<{ history: number[]; target: number }> = [];
  for (let u = 0; u < users; u++) {
    const seq: number[] = [1 + rng.int(itemCount)];
    while (seq.length < length) {
      const prev = seq[seq.length - 1] as number;
      seq.push(rng.next() < 0.85 ? (prev % itemCount) + 1 : 1 + rng.int(itemCount));
    }
    for (let t = 1; t < length - 2; t++) train.push({ history: seq.slice(0, t), target: seq[t] as number });
    valid.push({ history: seq.slice(0, length - 2), target: seq[length - 2] as number });
    test.push({ history: seq.slice(0, length - 1), target: seq[length - 1] as number });
  }
  return {
    name: 'tiny',
    itemCount,
    train: examplesFrom(train),
    valid: examplesFrom(valid),
    test: examplesFrom(test),
    protocol: 'tiny synthetic walk: prefixes train, last two valid/test',
    watermarkMs: 1_700_000_000_000,
  };
}

/** Small model and training settings for tests (no dropout unless asked, short warm-up). */
export function tinyConfig(type: 'ccfrec' | 'sasrec', overrides: { model?: Record<string, unknown>; train?: Record<string, unknown>; eval?: Record<string, unknown> } = {}): TrainerConfig {
  return parseTrainerConfig({
    model: {
      type,
      embeddingSize: TINY.dims,
      innerSize: 32,
      nHeads: 2,
      nLayers: 1,
      maxHistoryLength: 5,
      negNum: 10,
      ...(type === 'ccfrec' ? { nLayersCross: 1 } : {}),
      ...overrides.model,
    },
    train: { batchSize: 16, warmupSteps: 0, epochs: 2, seed: 7, ...overrides.train },
    eval: { batchSize: 16, ...overrides.eval },
  });
}

/**
 * The synthetic walk as a dataset (no shipped split, real-looking timestamps), for end-to-end
 * runs through {@link leaveOneOutSplit}: items `i1..iN`, users `u0..`.
 */
export function tinyDataset(seed = 2, users = 40, itemCount = TINY.items, length = 8): LoadedDataset {
  const rng = new Random(seed);
  const sequences = Array.from({ length: users }, (_, u) => {
    const seq: number[] = [1 + rng.int(itemCount)];
    while (seq.length < length) {
      const prev = seq[seq.length - 1] as number;
      seq.push(rng.next() < 0.85 ? (prev % itemCount) + 1 : 1 + rng.int(itemCount));
    }
    return { userId: `u${u}`, itemIds: seq.map((i) => `i${i}`), timestamps: seq.map((_, t) => 1_700_000_000_000 + u * 1000 + t * 60_000) };
  });
  return {
    name: 'tiny',
    dir: '(memory)',
    items: Array.from({ length: itemCount }, (_, i) => ({ itemId: `i${i + 1}`, ts: 1_600_000_000_000, title: `item ${i + 1}` })) as LoadedDataset['items'],
    sequences,
    eventType: 'view' as LoadedDataset['eventType'],
    timestampRule: 'synthetic',
  };
}
