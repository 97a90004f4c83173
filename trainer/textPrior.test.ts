import { initTf, tf } from '../infra/tf';
import { examplesFrom, leaveOneOutSplit, makeBatch } from './data';
import { evaluateFullRanking } from './evaluate';
import { createModel } from './models';
import { Random } from '../random';
import type { ItemSideInfo } from './sideInfo';
import { TextPrior, parsePoolingList, textPriorTable, textPriorTableInSlices } from './textPrior';
import { TINY, tinyConfig, tinyDataset, tinySideInfo, walkTextSideInfo } from './testing/fixtures';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ArtifactStore } from '../infra/artifacts';
import { loadCheckpoint } from './checkpoint';
import { trainAndEvaluate } from './experiment';
import { InMemoryObserver } from './observer';
import { itemIdMappingFromList } from './sideInfo';

/** Four items with 2-d text: 1 = (1, 0), 2 = (0, 2) (normalised to (0, 1)), 3 = (1, 1), 4 = (-1, 0). */
function fourItems(): ItemSideInfo {
  return {
    itemCount: 4,
    textFields: [{ name: 'meta', dims: 2, table: Float32Array.from([0, 0, 1, 0, 0, 2, 1, 1, -1, 0]) }],
    codes: { levels: 1, codesPerLevel: 4, table: Int32Array.from([0, 0, 1, 2, 3]) },
    artifactIds: {},
  };
}

beforeAll(async () => {
  await initTf();
});

describe('text prior', () => {
  it('normalises each item text row and keeps the padding row zero', () => {
    const { table, dims } = textPriorTable(fourItems());
    expect(dims).toBe(2);
    expect(Array.from(table.subarray(0, 2))).toEqual([0, 0]);
    expect(Array.from(table.subarray(4, 6))).toEqual([0, 1]);
    expect(table[6]).toBeCloseTo(Math.SQRT1_2, 6);
  });

  it('builds the same table from one text field as from the same columns split over two', () => {
    const one = fourItems();
    const table = one.textFields[0]?.table as Float32Array;
    const column = (c: number): Float32Array => Float32Array.from({ length: 5 }, (_, r) => table[r * 2 + c] as number);
    const split: ItemSideInfo = { ...one, textFields: [{ name: 'a', dims: 1, table: column(0) }, { name: 'b', dims: 1, table: column(1) }] };
    expect(Array.from(textPriorTable(split).table)).toEqual(Array.from(textPriorTable(one).table));
    // The prior's own vectors are that table.
    const prior = new TextPrior(one, { weight: 1, lastItems: 2, pooling: 'max' });
    expect(Array.from(prior.vectors.table)).toEqual(Array.from(textPriorTable(one).table));
    prior.dispose();
  });

  it('builds the same table a slice at a time (several slices, one and two fields), letting the event loop in', async () => {
    const rng = new Random(8);
    const n = 10_000; // > 2 slices of 4,096 rows
    const field = (dims: number): Float32Array => {
      const t = new Float32Array((n + 1) * dims);
      for (let i = dims; i < t.length; i++) t[i] = rng.normal();
      return t;
    };
    const codes = { levels: 1, codesPerLevel: 4, table: new Int32Array(n + 1) };
    for (const textFields of [[{ name: 'a', dims: 5, table: field(5) }], [{ name: 'a', dims: 3, table: field(3) }, { name: 'b', dims: 2, table: field(2) }]]) {
      const info: ItemSideInfo = { itemCount: n, textFields, codes, artifactIds: {} };
      // A callback that queues itself again runs once per event-loop turn: it runs between the slices.
      let ticks = 0;
      let ticking = true;
      const tick = (): void => {
        ticks++;
        if (ticking) setImmediate(tick);
      };
      setImmediate(tick);
      const sliced = await textPriorTableInSlices(info);
      ticking = false;
      const whole = textPriorTable(info);
      expect(sliced.dims).toBe(5);
      expect(Buffer.from(sliced.table.buffer).equals(Buffer.from(whole.table.buffer))).toBe(true);
      expect(ticks).toBeGreaterThanOrEqual(2); // 3 slices: 2 yields
      // A prior given the table uses it as is; one of the wrong size is refused.
      const prior = new TextPrior(info, { weight: 1, lastItems: 2, pooling: 'max' }, sliced);
      expect(prior.vectors.table).toBe(sliced.table);
      prior.dispose();
      expect(() => new TextPrior(info, { weight: 1, lastItems: 2, pooling: 'max' }, { table: sliced.table.subarray(5), dims: 5 })).toThrow(/a table of 50000 values for 10000 items of 5 dims \(expected 50005\)/);
    }
  });

  it('scores items by the mean text of the last distinct items and gives the query items 0', () => {
    const prior = new TextPrior(fourItems(), { weight: 1, lastItems: 2, pooling: 'mean' });
    try {
      // history [4, 1, 2, 2]: query = the last 2 distinct items, 2 and 1 -> mean (0.5, 0.5)
      const batch = makeBatch(examplesFrom([{ history: [4, 1, 2, 2], target: 3 }, { history: [3], target: 1 }]), [0, 1], 4);
      expect(prior.queryItems(batch, 0)).toEqual([2, 1]);
      const s = prior.scores(batch).arraySync();
      expect(s[0]?.[0]).toBe(0); // padding
      expect(s[0]?.[1]).toBe(0); // query item
      expect(s[0]?.[2]).toBe(0); // query item
      expect(s[0]?.[3]).toBeCloseTo(Math.SQRT1_2, 5); // (0.5, 0.5) . (0.707, 0.707)
      expect(s[0]?.[4]).toBeCloseTo(-0.5, 5);
      // history [3]: query (0.707, 0.707)
      expect(s[1]?.[1]).toBeCloseTo(Math.SQRT1_2, 5);
      expect(s[1]?.[3]).toBe(0);
      const fused = prior.fuse(tf.fill([2, 5], 0.25) as tf.Tensor2D, batch).arraySync();
      expect(fused[0]?.[3]).toBeCloseTo(0.25 + Math.SQRT1_2, 5);
      expect(fused[0]?.[1]).toBeCloseTo(0.25, 5);
    } finally {
      prior.dispose();
    }
  });

  it('with max pooling scores items by their cosine to the nearest query item; missing query slots never win', () => {
    const prior = new TextPrior(fourItems(), { weight: 1, lastItems: 2, pooling: 'max' });
    try {
      // history [4, 1, 2, 2]: query items 2 = (0, 1) and 1 = (1, 0)
      const batch = makeBatch(examplesFrom([{ history: [4, 1, 2, 2], target: 3 }, { history: [3], target: 1 }]), [0, 1], 4);
      const s = prior.scores(batch).arraySync();
      expect(s[0]?.slice(0, 3)).toEqual([0, 0, 0]); // padding and the query items
      expect(s[0]?.[3]).toBeCloseTo(Math.SQRT1_2, 5); // max(0.707, 0.707)
      expect(s[0]?.[4]).toBeCloseTo(0, 5); // max(0 to item 2, -1 to item 1); the mean would be -0.5
      // history [3]: one query item for two slots; the empty slot must not lift item 4 above its -0.707
      expect(s[1]?.[1]).toBeCloseTo(Math.SQRT1_2, 5);
      expect(s[1]?.[3]).toBe(0);
      expect(s[1]?.[4]).toBeCloseTo(-Math.SQRT1_2, 5);
    } finally {
      prior.dispose();
    }
  });

  it('rejects bad settings with the field named', () => {
    expect(() => new TextPrior(fourItems(), { weight: -1, lastItems: 1, pooling: 'max' })).toThrow(/weight must be a finite number >= 0, got -1/);
    expect(() => new TextPrior(fourItems(), { weight: 1, lastItems: 0, pooling: 'max' })).toThrow(/lastItems must be an integer >= 1, got 0/);
    expect(() => new TextPrior(fourItems(), { weight: 1, lastItems: 1, pooling: 'sum' as 'max' })).toThrow(/pooling must be one of max, mean, got "sum"/);
    expect(parsePoolingList('--pooling', 'max, mean')).toEqual(['max', 'mean']);
    expect(() => parsePoolingList('--pooling', 'max,avg')).toThrow(/--pooling: expected max or mean \(or both, comma-separated\), got "max,avg" \(bad entry "avg"\)/);
  });

  it('changes the full-ranking evaluation only with a weight above 0, and leaks no tensors', async () => {
    const info = tinySideInfo(3);
    const model = createModel(tinyConfig('ccfrec').model, { itemCount: TINY.items, sideInfo: info }, new Random(5));
    const rng = new Random(9);
    const rows = Array.from({ length: 64 }, () => ({ history: Array.from({ length: 5 }, () => 1 + rng.int(TINY.items)), target: 1 + rng.int(TINY.items) }));
    const examples = examplesFrom(rows);
    const options = { ks: [5, 10], excludeHistory: false, batchSize: 16 };
    const off = new TextPrior(info, { weight: 0, lastItems: 2, pooling: 'max' });
    const on = new TextPrior(info, { weight: 50, lastItems: 2, pooling: 'max' });
    try {
      const plain = await evaluateFullRanking(model, examples, 5, options);
      const before = tf.memory().numTensors;
      const zero = await evaluateFullRanking(model, examples, 5, { ...options, textPrior: off });
      const heavy = await evaluateFullRanking(model, examples, 5, { ...options, textPrior: on });
      // The prior that scored made its table tensor on first use (weight 0 never scores); nothing else is left.
      expect(tf.memory().numTensors).toBe(before + 1);
      on.dispose();
      expect(tf.memory().numTensors).toBe(before);
      expect(zero.metrics).toEqual(plain.metrics);
      expect(heavy.metrics).not.toEqual(plain.metrics);
    } finally {
      off.dispose();
      on.dispose();
      model.dispose();
    }
  });

  it('is tuned after training for SASRec too, stored with the checkpoint, and refused without text embeddings', async () => {
    const dataset = tinyDataset();
    const itemIds = itemIdMappingFromList(dataset.items.map((i) => i.itemId));
    const info = walkTextSideInfo();
    const store = new ArtifactStore(mkdtempSync(path.join(tmpdir(), 'streamrec-prior-')));
    const observer = new InMemoryObserver();
    const config = tinyConfig('sasrec', { train: { epochs: 1, batchSize: 32 }, eval: { textPrior: { weights: [0.25, 1], lastItems: [1, 2], pooling: ['mean', 'max'] } } });
    const before = tf.memory().numTensors;
    const result = await trainAndEvaluate({ dataset, itemIds, sideInfo: info, store, observer, runId: 'prior-sasrec', config });
    expect(tf.memory().numTensors).toBe(before);
    const prior = result.textPrior!;
    expect([0.25, 1]).toContain(prior.weight); // texts that predict the walks beat SASRec alone
    expect(prior.curve).toHaveLength(1 + 2 * 2 * 2); // the model alone, then pooling x lastItems x weights
    expect(prior.curve.slice(1).map((c) => `${c.pooling}/${c.lastItems}`)).toEqual(['mean/1', 'mean/1', 'mean/2', 'mean/2', 'max/1', 'max/1', 'max/2', 'max/2']);
    const best = prior.curve.reduce((a, c) => (c.value > a.value ? c : a));
    expect({ weight: prior.weight, lastItems: prior.lastItems, pooling: prior.pooling }).toEqual({ weight: best.weight, lastItems: best.lastItems, pooling: best.pooling });
    expect(observer.runs[0]!.artifacts).toEqual({ 'textEmbeddings.meta': 'embeddings-0123456789abcdef' });
    // The fused test rows: the model's rows plus the fused ones, told apart by textPrior.
    const fusedTest = observer.evaluations.filter((r) => r.split === 'test' && r.textPrior);
    expect(fusedTest.map((r) => r.value)).toEqual(Object.values(prior.test.metrics));
    expect(fusedTest.every((r) => r.textPrior?.weight === prior.weight && r.textPrior.lastItems === prior.lastItems && r.textPrior.pooling === prior.pooling)).toBe(true);
    // The checkpoint carries the tuned prior; evaluating it again with that prior reproduces the test metrics.
    const { model, settings } = await loadCheckpoint(store, result.checkpointId!, { itemCount: TINY.items });
    expect(settings.textPrior).toEqual({ weight: prior.weight, lastItems: prior.lastItems, pooling: prior.pooling });
    const again = new TextPrior(info, settings.textPrior!);
    try {
      const data = leaveOneOutSplit(dataset, itemIds);
      const evaluated = await evaluateFullRanking(model, data.test, config.model.maxHistoryLength, { ks: config.eval.ks, excludeHistory: false, batchSize: 64, textPrior: again });
      expect(evaluated.metrics).toEqual(prior.test.metrics);
    } finally {
      again.dispose();
      model.dispose();
    }

    await expect(trainAndEvaluate({ dataset, itemIds, runId: 'prior-none', config })).rejects.toThrow(
      /eval.textPrior.weights is set but no side information \(item text embeddings\) was given/,
    );
  }, 60_000);
});
