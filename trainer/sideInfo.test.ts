import { Random } from '../random';
import { sideInfoFingerprint, sideInfoFingerprintInSlices, type ItemSideInfo } from './sideInfo';

describe('sideInfoFingerprintInSlices', () => {
  it('gives the fingerprint sideInfoFingerprint gives, of the whole catalog and of a prefix', async () => {
    const rng = new Random(5);
    const n = 300_000; // the 16 MB table hashes in several slices
    const table = new Float32Array((n + 1) * 14);
    for (let i = 14; i < table.length; i++) table[i] = rng.normal();
    const codes = new Int32Array((n + 1) * 2);
    for (let i = 2; i < codes.length; i++) codes[i] = rng.int(8);
    const info: ItemSideInfo = { itemCount: n, textFields: [{ name: 'meta', dims: 14, table }], codes: { levels: 2, codesPerLevel: 8, table: codes }, artifactIds: {} };
    expect(await sideInfoFingerprintInSlices(info)).toEqual(sideInfoFingerprint(info));
    expect(await sideInfoFingerprintInSlices(info, 1000)).toEqual(sideInfoFingerprint(info, 1000));
    expect((await sideInfoFingerprintInSlices(info, 1000)).textFields[0]?.sha256).not.toBe(sideInfoFingerprint(info).textFields[0]?.sha256);
    await expect(sideInfoFingerprintInSlices(info, 0)).rejects.toThrow('side info fingerprint: items must be 1..300000, got number 0');
  });
});
