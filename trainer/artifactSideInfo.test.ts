import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ArtifactStore } from '../infra/artifacts';
import { AppConfig, runRebuildJob } from '../jobs';
import { collectGarbage } from '../test/gc';
import { writeTinyScientific } from '../test/tinyScientific';
import { loadArtifactSideInfo } from './artifactSideInfo';

/**
 * Side information read from the store is shared while something holds it (every checkpoint of
 * one catalog loads the same tables), and read and checked again once its files change.
 */
describe('loadArtifactSideInfo', () => {
  const root = mkdtempSync(path.join(tmpdir(), 'streamrec-side-info-'));
  const config = AppConfig.parse({
    artifacts: { dir: path.join(root, 'artifacts'), registryFile: path.join(root, 'artifacts', 'item-registry.json') },
    features: { encoder: 'tfidf-lsa', pcaDims: 8, tfidfLsa: { minDf: 1 } },
    quantizer: { levels: 2, codesPerLevel: 8 },
  });
  const store = new ArtifactStore(config.artifacts.dir);
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('gives every load of the same artifacts one copy, and reads a changed file again (a corrupt one is refused)', async () => {
    const data = writeTinyScientific(mkdtempSync(path.join(root, 'data-')), { items: 40 });
    await runRebuildJob(config, { source: { kind: 'dataset', dataset: data } });
    const first = await loadArtifactSideInfo(store);
    const again = await loadArtifactSideInfo(store);
    expect([again.sideInfo === first.sideInfo, again.itemIds === first.itemIds]).toEqual([true, true]);

    // One value of a text table changed in place (same size): the file's times changed, so it is
    // read and hashed again, and refused, although a loaded copy of the good bytes is still held.
    const embeddings = await store.open(first.sideInfo.artifactIds.itemRegistry as string);
    const field = first.sideInfo.textFields[0]!.name;
    const file = path.join(embeddings.dir, `${field}.npy`);
    const good = readFileSync(file);
    const bad = Buffer.from(good);
    bad.writeFloatLE(bad.readFloatLE(bad.length - 4) + 1, bad.length - 4);
    writeFileSync(file, bad);
    await expect(loadArtifactSideInfo(store)).rejects.toThrow(`artifact ${embeddings.id}: ${field}.npy does not match its sha256 (corrupt)`);
    // Put back: read again (a new copy, the same values).
    writeFileSync(file, good);
    let reread: Awaited<ReturnType<typeof loadArtifactSideInfo>> | undefined = await loadArtifactSideInfo(store);
    expect(reread.sideInfo).not.toBe(first.sideInfo);
    expect(reread.sideInfo.textFields.map((f) => Array.from(f.table))).toEqual(first.sideInfo.textFields.map((f) => Array.from(f.table)));
    let third: Awaited<ReturnType<typeof loadArtifactSideInfo>> | undefined = await loadArtifactSideInfo(store);
    expect([third.sideInfo === reread.sideInfo, third.itemIds === reread.itemIds]).toEqual([true, true]);

    // Held weakly: once nothing holds a copy, the sharing does not keep it alive.
    const weak = new WeakRef(reread.sideInfo);
    reread = third = undefined;
    await new Promise((resolve) => setImmediate(resolve)); // a WeakRef's target is kept until the job that made it ends
    collectGarbage();
    expect(weak.deref()).toBeUndefined();
  }, 60_000);
});
