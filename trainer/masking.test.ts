import { Random } from '../random';
import { MASK_TOKEN_ID, maskCodes } from './masking';

describe('maskCodes (the 80/10/10 BERT rule)', () => {
  const codeCount = 32;
  const n = 60_000;
  const codes = Int32Array.from({ length: n }, (_, i) => (i % 10 === 9 ? 0 : 1 + (i % codeCount)));
  const result = maskCodes(codes, codeCount, 0.5, new Random(3));

  it('picks about maskRatio of the non-padding positions and never padding', () => {
    const nonPadding = codes.filter((c) => c !== 0).length;
    expect(result.positions.length / nonPadding).toBeCloseTo(0.5, 2);
    expect(result.positions.every((p) => codes[p] !== 0)).toBe(true);
    expect(codes.every((c, i) => c !== 0 || result.codes[i] === 0)).toBe(true);
  });

  it('labels are the original codes; unpicked positions are unchanged', () => {
    expect(result.labels.length).toBe(result.positions.length);
    expect(result.positions.every((p, j) => result.labels[j] === codes[p])).toBe(true);
    const picked = new Set(result.positions);
    expect(codes.every((c, i) => picked.has(i) || result.codes[i] === c)).toBe(true);
  });

  it('replaces 80% by the mask token, 10% by a random code in 1..codeCount, keeps 10%', () => {
    let masked = 0;
    let kept = 0;
    let other = 0;
    result.positions.forEach((p) => {
      const now = result.codes[p] as number;
      if (now === MASK_TOKEN_ID) masked++;
      else if (now === codes[p]) kept++;
      else {
        other++;
        if (now < 1 || now > codeCount) throw new Error(`random replacement ${now} outside 1..${codeCount}`);
      }
    });
    const m = result.positions.length;
    expect(masked / m).toBeCloseTo(0.8, 1);
    // A random replacement equals the original with probability 1/codeCount.
    expect(other / m).toBeCloseTo(0.1 * (1 - 1 / codeCount), 1);
    expect(kept / m).toBeCloseTo(0.1 + 0.1 / codeCount, 1);
    expect(Math.abs(masked / m - 0.8)).toBeLessThan(0.01);
    expect(Math.abs(other / m - 0.1 * (1 - 1 / codeCount))).toBeLessThan(0.01);
  });

  it('is a pure function of the generator', () => {
    const again = maskCodes(codes, codeCount, 0.5, new Random(3));
    expect(Array.from(again.codes)).toEqual(Array.from(result.codes));
    expect(Array.from(maskCodes(codes, codeCount, 0, new Random(4)).positions)).toEqual([]);
    expect(maskCodes(codes, codeCount, 1, new Random(4)).positions.length).toBe(codes.filter((c) => c !== 0).length);
  });
});
