import { ValidationError } from '../errors';
import { datasetsRoot, loadDataset, type LoadedDataset } from '../datasets';
import { Random } from '../random';
import { batchIndices, examplesFrom, historyOf, leaveOneOutSplit, makeBatch } from './data';
import { itemIdMappingFromList } from './sideInfo';
import { itWithDatasets } from '../datasets/testing/realDatasets';

/** Timestamps default to 1000, 1001, ... per user. */
function dataset(sequences: Array<{ userId: string; itemIds: string[]; timestamps?: number[] }>, split?: LoadedDataset['split']): LoadedDataset {
  return {
    name: 'fake',
    dir: '(memory)',
    items: ['a', 'b', 'c', 'd', 'e'].map((itemId) => ({ itemId, ts: 0 })) as LoadedDataset['items'],
    sequences: sequences.map((s) => ({ ...s, timestamps: s.timestamps ?? s.itemIds.map((_, i) => 1000 + i) })),
    eventType: 'view' as LoadedDataset['eventType'],
    timestampRule: 'test',
    ...(split ? { split } : {}),
  };
}

const mapping = itemIdMappingFromList(['a', 'b', 'c', 'd', 'e']);

describe('batches', () => {
  it('cut histories to the last maxLength items and left-align them, padding with 0 at the end', () => {
    const ex = examplesFrom([
      { history: [1, 2, 3, 4, 5, 6, 7], target: 8 },
      { history: [9], target: 10 },
      { history: [3, 4], target: 5 },
    ]);
    expect(Array.from(historyOf(ex, 0))).toEqual([1, 2, 3, 4, 5, 6, 7]);
    const b = makeBatch(ex, [0, 1, 2], 5);
    expect(Array.from(b.items)).toEqual([3, 4, 5, 6, 7, 9, 0, 0, 0, 0, 3, 4, 0, 0, 0]);
    expect(Array.from(b.lengths)).toEqual([5, 1, 2]);
    expect(Array.from(b.targets)).toEqual([8, 10, 5]);
  });

  it('batchIndices covers every example once, shuffled by the generator', () => {
    const batches = batchIndices(10, 4, new Random(1));
    expect(batches.map((b) => b.length)).toEqual([4, 4, 2]);
    expect(batches.flatMap((b) => Array.from(b)).sort((x, y) => x - y)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(batches.map((b) => Array.from(b))).toEqual(batchIndices(10, 4, new Random(1)).map((b) => Array.from(b)));
    expect(Array.from(batchIndices(5, 2)[0]!)).toEqual([0, 1]);
  });
});

describe('leaveOneOutSplit', () => {
  it('time-ordered sequences: last event test, previous valid, earlier prefixes train', () => {
    const data = leaveOneOutSplit(dataset([{ userId: 'u1', itemIds: ['a', 'b', 'c', 'd', 'e'] }, { userId: 'u2', itemIds: ['c', 'a'] }]), mapping);
    const rows = (ex: typeof data.train) => Array.from({ length: ex.count }, (_, i) => [Array.from(historyOf(ex, i)), ex.targets[i]]);
    expect(rows(data.train)).toEqual([[[1], 2], [[1, 2], 3], [[3], 1]]);
    expect(rows(data.valid)).toEqual([[[1, 2, 3], 4]]);
    expect(rows(data.test)).toEqual([[[1, 2, 3, 4], 5]]);
    expect(data.itemCount).toBe(5);
    // u1 trains on a, b, c (1000..1002; d and e are valid and test), u2 on both its events (1000, 1001).
    expect(data.watermarkMs).toBe(1002);
  });

  it('the watermark covers training events only, for both kinds of split', () => {
    // Valid and test events are each user's newest, far later than any training event.
    const sequences = [
      { userId: 'u1', itemIds: ['a', 'b', 'c', 'd', 'e'], timestamps: [1000, 1001, 1002, 5000, 6000] },
      { userId: 'u2', itemIds: ['c', 'a'], timestamps: [1003, 1004] }, // fewer than 3 events: all train
      { userId: 'u3', itemIds: ['b', 'a', 'd', 'e'], timestamps: [900, 950, 7000, 8000] },
    ];
    expect(leaveOneOutSplit(dataset(sequences), mapping).watermarkMs).toBe(1004);
    expect(leaveOneOutSplit(dataset(sequences.slice(0, 1)), mapping).watermarkMs).toBe(1002);
    expect(leaveOneOutSplit(dataset(sequences.slice(2)), mapping).watermarkMs).toBe(950);

    // A shipped split: the sequence is the training sequence, then the valid and the test target.
    const split = {
      train: [{ userId: 'u', history: ['a'], target: 'b' }],
      valid: [{ userId: 'u', history: ['a', 'b'], target: 'c' }],
      test: [{ userId: 'u', history: ['a', 'b', 'c'], target: 'd' }],
    };
    const shipped = leaveOneOutSplit(dataset([{ userId: 'u', itemIds: ['a', 'b', 'c', 'd'], timestamps: [1000, 1500, 9000, 9500] }], split), mapping);
    expect(shipped.protocol).toMatch(/shipped/);
    expect(shipped.watermarkMs).toBe(1500);
  });

  it('uses a shipped split as given and rejects items the registry does not know', () => {
    const split = { train: [{ userId: 'u', history: ['a'], target: 'b' }], valid: [{ userId: 'u', history: ['a', 'b'], target: 'c' }], test: [{ userId: 'u', history: ['a', 'b', 'c'], target: 'd' }] };
    const data = leaveOneOutSplit(dataset([{ userId: 'u', itemIds: ['a', 'b', 'c', 'd'] }], split), mapping);
    expect([data.train.count, data.valid.count, data.test.count]).toEqual([1, 1, 1]);
    expect(Array.from(historyOf(data.test, 0))).toEqual([1, 2, 3]);
    expect(data.protocol).toMatch(/shipped/);
    expect(() => leaveOneOutSplit(dataset([{ userId: 'u', itemIds: ['a', 'z', 'b'] }]), mapping)).toThrow(ValidationError);
  });

  const root = datasetsRoot();
  itWithDatasets('scientific', 'ml-100k')(`real datasets (${root}): Scientific split as shipped, ML-100K leave-one-out`, async () => {
    const sci = await loadDataset('scientific');
    const sciData = leaveOneOutSplit(sci, itemIdMappingFromList(sci.items.map((i) => i.itemId)));
    expect([sciData.itemCount, sciData.train.count, sciData.valid.count, sciData.test.count]).toEqual([4385, 34101, 8442, 8442]);
    const ml = await loadDataset('ml-100k');
    const mlData = leaveOneOutSplit(ml, itemIdMappingFromList(ml.items.map((i) => i.itemId)));
    // 943 users with >= 20 ratings: one valid and one test row each; every other event after the first trains.
    expect([mlData.itemCount, mlData.valid.count, mlData.test.count, mlData.train.count]).toEqual([1682, 943, 943, 100_000 - 3 * 943]);
  });
});
