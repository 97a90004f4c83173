import { Random } from '../random';
import { Vocabulary } from './vocabulary';

const of = (words: readonly string[]): Vocabulary => new Vocabulary(Buffer.from(words.map((w) => `${w}\n`).join(''), 'utf8'));

describe('Vocabulary', () => {
  it('maps words to rows and back, UTF-8 included; a repeated word keeps its first row', () => {
    const v = of(['the', 'café', ',', 'the', '', 'naïve', '日本']);
    expect(v.size).toBe(7);
    expect(v.get('the')).toBe(0);
    expect(v.get('café')).toBe(1);
    expect(v.get(',')).toBe(2);
    expect(v.get('')).toBe(4);
    expect(v.get('日本')).toBe(6);
    expect([0, 1, 2, 3, 4, 5, 6].map((r) => v.word(r))).toEqual(['the', 'café', ',', 'the', '', 'naïve', '日本']);
  });

  it('answers undefined for what it does not hold', () => {
    const v = of(['a', 'b']);
    expect(v.get('c')).toBeUndefined();
    expect(v.get('a\nb')).toBeUndefined();
    expect(v.get('ab')).toBeUndefined();
    expect(v.word(-1)).toBeUndefined();
    expect(v.word(2)).toBeUndefined();
    expect(v.word(0.5)).toBeUndefined();
    expect(new Vocabulary(Buffer.alloc(0)).get('a')).toBeUndefined();
  });

  it('refuses a last line without its newline', () => {
    expect(() => new Vocabulary(Buffer.from('a\nb', 'utf8'))).toThrow(/last line has no newline/);
  });

  it('agrees with a Map over 20,000 random words (collisions in its table included)', () => {
    const rng = new Random(11);
    const words = Array.from({ length: 20_000 }, () => Array.from({ length: 1 + Math.floor(rng.next() * 6) }, () => String.fromCharCode(97 + Math.floor(rng.next() * 26))).join(''));
    const v = of(words);
    const map = new Map<string, number>();
    words.forEach((w, i) => map.has(w) || map.set(w, i));
    for (const [w, row] of map) expect(v.get(w)).toBe(row);
    for (let i = 0; i < 2_000; i++) {
      const probe = `${words[i]}zz`;
      expect(v.get(probe)).toBe(map.get(probe));
    }
  });
});
