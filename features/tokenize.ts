/**
 * Word tokenisation for the word-level encoders (glove-sif, tfidf-lsa). Cleaned item text has no
 * quotes or markup left, so words are runs of letters, digits and combining marks (any script),
 * lowercased; hyphenated compounds are kept whole (`well-known`, `o-ring`) for vocabularies that
 * have them, and {@link splitCompound} gives their parts for those that do not.
 */

const WORD = /[\p{L}\p{N}\p{M}]+(?:-[\p{L}\p{N}\p{M}]+)*/gu;
const MARKS = /\p{M}+/gu;

/** Lowercase word tokens: `"4-1/2-Inch Grinding, well-known"` -> `["4-1", "2-inch", "grinding", "well-known"]`. */
export function wordTokens(text: string): string[] {
  return text.toLowerCase().match(WORD) ?? [];
}

/** The parts of a hyphenated token (`"2-inch"` -> `["2", "inch"]`); a plain token gives itself. */
export function splitCompound(token: string): string[] {
  return token.includes('-') ? token.split('-').filter((p) => p.length > 0) : [token];
}

/** The token without diacritics (`"café"` -> `"cafe"`), for vocabularies of plain ASCII words. */
export function stripDiacritics(token: string): string {
  return token.normalize('NFKD').replace(MARKS, '');
}
