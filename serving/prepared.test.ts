import { mkdtempSync, readdirSync, rmSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ArtifactStore } from '../infra/artifacts';
import { isPrepared, markPrepared } from './prepared';

describe('prepared-for-serving markers', () => {
  const root = mkdtempSync(path.join(tmpdir(), 'streamrec-prepared-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('says prepared only for the checkpoint and catalog marked', async () => {
    const store = new ArtifactStore(path.join(root, 'a'));
    expect(await isPrepared(store, 'checkpoint-01', 'semantic_ids-01')).toBe(false);
    await markPrepared(store, 'checkpoint-01', 'semantic_ids-01', { encoder: 5 });
    expect(await isPrepared(store, 'checkpoint-01', 'semantic_ids-01')).toBe(true);
    expect(await isPrepared(store, 'checkpoint-01', 'semantic_ids-02')).toBe(false);
    expect(await isPrepared(store, 'checkpoint-02', 'semantic_ids-01')).toBe(false);
    // No staging file is left beside the marker.
    expect(readdirSync(path.join(store.root, 'serving-prepared')).filter((n) => !n.endsWith('.json'))).toEqual([]);
  });

  it('keeps the newest markers when there are more than it keeps', async () => {
    const store = new ArtifactStore(path.join(root, 'b'));
    const dir = path.join(store.root, 'serving-prepared');
    const dated = new Set<string>();
    for (let i = 0; i < 4; i++) {
      await markPrepared(store, `checkpoint-0${i}`, 'semantic_ids-01', {}, 3);
      // Each new marker an older, distinct mtime than the next, whatever the file system's resolution.
      for (const name of readdirSync(dir)) {
        if (dated.has(name)) continue;
        dated.add(name);
        const at = new Date(Date.now() - 1000 * (10 - i));
        utimesSync(path.join(dir, name), at, at);
      }
    }
    expect(readdirSync(dir)).toHaveLength(3);
    expect(await isPrepared(store, 'checkpoint-00', 'semantic_ids-01')).toBe(false);
    for (const i of [1, 2, 3]) expect(await isPrepared(store, `checkpoint-0${i}`, 'semantic_ids-01')).toBe(true);
  });
});
