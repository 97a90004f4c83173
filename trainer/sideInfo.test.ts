import { Random } from '../random';
import { sideInfoFingerprint, sideInfoFingerprintInSlices, validateSideInfo, validateSideInfoInSlices, type ItemSideInfo } from './sideInfo';

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

describe('validateSideInfoInSlices', () => {
  const sideInfo = (n: number): ItemSideInfo => {
    const table = new Float32Array((n + 1) * 8);
    for (let i = 8; i < table.length; i++) table[i] = ((i * 7919) % 1000) / 1000 - 0.5;
    const codes = new Int32Array((n + 1) * 3);
    for (let i = 3; i < codes.length; i++) codes[i] = (i * 31) % 16;
    return { itemCount: n, textFields: [{ name: 'meta', dims: 8, table }], codes: { levels: 3, codesPerLevel: 16, table: codes }, artifactIds: {} };
  };
  const errorOf = async (check: () => unknown): Promise<string> => {
    try {
      await check();
      return 'no error';
    } catch (error) {
      return (error as Error).message;
    }
  };

  it('refuses what validateSideInfo refuses, with the same message, in any slice of the tables', async () => {
    const n = 400_000; // the tables span several slices
    const digit = sideInfo(n);
    (digit.codes.table as Int32Array)[3 * 350_000 + 2] = 16;
    const text = sideInfo(n);
    (text.textFields[0]?.table as Float32Array)[8 * 390_000] = Number.POSITIVE_INFINITY;
    const padding = sideInfo(n);
    (padding.textFields[0]?.table as Float32Array)[3] = 1;
    for (const [info, expected] of [
      [digit, 'side info: code digit of item 350000 level 2 is 16, expected 0..15'],
      [text, 'side info: text field "meta" has a non-finite value at row 390000'],
      [padding, 'side info: text field "meta" row 0 (padding) must be zeros'],
    ] as const) {
      expect(await errorOf(() => validateSideInfoInSlices(info))).toBe(expected);
      expect(await errorOf(() => validateSideInfo(info))).toBe(expected);
    }
    expect(await errorOf(() => validateSideInfoInSlices(sideInfo(n)))).toBe('no error');
  });

  it('is not scanned again while it holds the same tables; a replaced table is checked again', async () => {
    const info = sideInfo(1000);
    await validateSideInfoInSlices(info);
    const bad = (info.textFields[0]?.table as Float32Array).slice();
    bad[8 * 10] = Number.NaN;
    const replaced: ItemSideInfo = { ...info, textFields: [{ name: 'meta', dims: 8, table: bad }] };
    expect(await errorOf(() => validateSideInfo(replaced))).toBe('side info: text field "meta" has a non-finite value at row 10');
    Object.assign(info, { textFields: replaced.textFields }); // the same object, its field now another array
    expect(await errorOf(() => validateSideInfo(info))).toBe('side info: text field "meta" has a non-finite value at row 10');
  });
});
