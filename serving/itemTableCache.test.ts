import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { initTf, tf } from '../infra/tf';
import type { ServableModel } from '../jobs';
import { ItemTableCache } from './itemTableCache';

beforeAll(async () => {
  await initTf();
});

/** A servable whose model computes row r as [r, r + 0.5, ...] and counts the rows it computed. */
function servable(checkpointId: string, itemCount: number, semanticIds = 'semantic-ids-1'): ServableModel & { computed: number } {
  const H = 3;
  const fake = {
    checkpointId,
    lineage: { semanticIds, embeddings: 'embeddings-1' },
    items: { itemCount },
    computed: 0,
    model: {
      hiddenSize: H,
      itemCount,
      itemTableRows: (start: number, end: number) => {
        fake.computed += end - start;
        return tf.tensor2d(Array.from({ length: (end - start) * H }, (_, i) => start + Math.floor(i / H) + (i % H) * 0.5), [end - start, H]);
      },
    },
  };
  return fake as unknown as ServableModel & { computed: number };
}

describe('ItemTableCache', () => {
  const root = mkdtempSync(path.join(tmpdir(), 'streamrec-table-cache-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('computes a table once per checkpoint and catalog; a later load reads the same numbers from the file', async () => {
    const cache = new ItemTableCache(path.join(root, 'a'));
    const first = servable('checkpoint-1', 5);
    const computed = await cache.getOrCompute(first, 'tensorflow');
    expect(first.computed).toBe(6); // N + 1 rows
    expect(Array.from(computed.subarray(3, 6))).toEqual([1, 1.5, 2]);

    const again = servable('checkpoint-1', 5);
    const read = await new ItemTableCache(path.join(root, 'a')).getOrCompute(again, 'tensorflow');
    expect(again.computed).toBe(0);
    expect(Array.from(read)).toEqual(Array.from(computed));
    expect(cache.misses).toBe(1);

    // Another catalog (new items coded), another checkpoint or another backend: another table.
    for (const other of [servable('checkpoint-1', 6, 'semantic-ids-2'), servable('checkpoint-2', 5)]) {
      await cache.getOrCompute(other, 'tensorflow');
      expect(other.computed).toBeGreaterThan(0);
    }
    const wasm = servable('checkpoint-1', 5);
    await cache.getOrCompute(wasm, 'wasm');
    expect(wasm.computed).toBe(6);
  });

  it('computes again over an entry of the wrong size, and keeps at most `keep` entries', async () => {
    const dir = path.join(root, 'b');
    const cache = new ItemTableCache(dir, 2);
    await cache.getOrCompute(servable('checkpoint-1', 5), 'tensorflow');
    const [entry] = readdirSync(dir);
    writeFileSync(path.join(dir, entry as string), Buffer.alloc(10)); // truncated
    const truncated = servable('checkpoint-1', 5);
    expect(Array.from((await cache.getOrCompute(truncated, 'tensorflow')).subarray(0, 3))).toEqual([0, 0.5, 1]);
    expect(truncated.computed).toBe(6);
    for (const id of ['checkpoint-2', 'checkpoint-3', 'checkpoint-4']) await cache.getOrCompute(servable(id, 5), 'tensorflow');
    expect(readdirSync(dir).filter((n) => n.endsWith('.f32'))).toHaveLength(2);
  });
});
