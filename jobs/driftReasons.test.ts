import type { CatalogDrift } from '../trainer';
import { LiveRebuildConfig } from './config';
import { driftReasons } from './liveTrainer';

/** The drift thresholds of a full rebuild (live.rebuild), each alone and below its line. */
describe('driftReasons', () => {
  const r = LiveRebuildConfig.parse({ minNewItems: 10, relMseRatio: 1.5, newItemShare: 0.3, collisionIncrease: 0.05 });
  // A catalog of 1,000 items, 100 coded after the rebuild: under every threshold.
  const calm: CatalogDrift = {
    rebuild: { id: 'semantic_ids-root', builtAtMs: 0, items: 900, relMse: 0.2, collisionRate: 0.02 },
    items: 1000,
    newItems: 100,
    newItemsRelMse: 0.25,
    collisionRate: 0.05,
  };

  it('gives no reason while every measure is within its threshold', () => {
    expect(driftReasons(calm, r)).toEqual([]);
    // Exactly at a threshold is not past it.
    expect(driftReasons({ ...calm, newItemsRelMse: 0.3, collisionRate: 0.07 }, { ...r, collisionIncrease: 0.05 + 1e-9 })).toEqual([]);
  });

  it("names the new items' reconstruction error against the rebuild's", () => {
    expect(driftReasons({ ...calm, newItemsRelMse: 0.32 }, r)).toEqual([expect.stringMatching(/new items' relative error 0\.3200 is 1\.60x the rebuild's 0\.2000 \(threshold 1\.5x\)/)]);
    // Without the error of either side there is nothing to compare.
    const { newItemsRelMse: _, ...noError } = { ...calm, newItemsRelMse: 0.32 };
    expect(driftReasons(noError, r)).toEqual([]);
    expect(driftReasons({ ...calm, newItemsRelMse: 0.32, rebuild: { ...calm.rebuild, relMse: undefined as unknown as number } }, r)).toEqual([]);
  });

  it('names the share of the catalog coded without being fitted on', () => {
    expect(driftReasons({ ...calm, items: 1000, newItems: 310 }, r)).toEqual([expect.stringMatching(/310 of 1000 items \(31\.0%\) were coded after the codebooks were fitted \(threshold 30\.0%\)/)]);
  });

  it('names the rise of the collision rate', () => {
    expect(driftReasons({ ...calm, collisionRate: 0.08 }, r)).toEqual([expect.stringMatching(/collision rate 0\.0800 vs 0\.0200 at the rebuild \(threshold \+0\.05\)/)]);
  });

  it('gives every reason crossed, and none before minNewItems items were coded', () => {
    const all = { ...calm, newItems: 400, newItemsRelMse: 0.5, collisionRate: 0.2 };
    expect(driftReasons(all, r)).toHaveLength(3);
    expect(driftReasons({ ...all, newItems: 9 }, r)).toEqual([]);
  });
});
