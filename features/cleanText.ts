import { decodeHtmlEntities } from './htmlEntities';

/**
 * Item text cleaning with the semantics of the seed's `clean_text` (Python: html.unescape, strip
 * tags, drop quotes and newlines, exactly one trailing period, emoji.replace_emoji; lists cleaned
 * element-wise and joined; dicts as `str(dict)` without the outer braces).
 *
 * Decided details, where the seed is silent or does something unhelpful:
 * - `null`/`undefined`/empty input, or text that is only whitespace, dots or emoji, gives `''`
 *   (never a lone `'.'`).
 * - Text is NFC-normalised first. Entities are decoded once (see {@link decodeHtmlEntities}).
 * - Tags and comments are removed; block-level tags (`<p>`, `<br>`, `<li>`, `<div>`, ...) become a
 *   space so that words do not run together, inline tags (`<b>`, `<span>`, ...) vanish. Only `<`
 *   directly followed by a letter (or `/` and a letter) starts a tag: `a < b` and `<3` stay.
 * - Quotes `"` `'` and their typographic forms `“ ” ‘ ’` are removed (so `it's` and `it’s` both
 *   become `its`).
 * - Newlines, tabs and runs of whitespace (including NBSP) become one space; ends are trimmed
 *   (the seed deleted newlines, gluing the words on both sides together).
 * - Emoji are removed before the trailing period is fixed, so `Great! 😀` becomes `Great!.`
 *   rather than `Great! .`: Extended_Pictographic characters with their skin-tone modifiers,
 *   variation selectors, ZWJ sequences and tag sequences (subdivision flags), keycaps (`1️⃣`),
 *   regional-indicator flags. Like the seed's emoji library this also removes `©`, `®`, `™`.
 * - Trailing dots and spaces are stripped and exactly one `.` is appended; other final
 *   punctuation is kept (`Great!` -> `Great!.`, as in the seed).
 * - List elements are cleaned one by one, empty ones dropped, and joined with a space (as the
 *   seed did; Amazon category paths read `A B C.`). Nested lists are flattened.
 * - Objects are flattened like Python's `str(dict)[1:-1]` after quote removal:
 *   `{a: 'x', b: ['y', 'z']}` -> `a: x, b: [y, z].` Numbers and booleans print as in JS.
 * - The seed's UniSRec ancestor also dropped texts of 2000+ characters; that is not done here.
 */

/** Bumped whenever the output of {@link cleanText} changes, so artifacts record which one ran. */
export const CLEAN_TEXT_VERSION = 1;

const BLOCK_TAGS = new Set([
  'address', 'article', 'aside', 'blockquote', 'br', 'dd', 'div', 'dl', 'dt', 'figcaption', 'figure', 'footer',
  'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'header', 'hr', 'li', 'main', 'nav', 'ol', 'p', 'pre', 'section', 'table',
  'tbody', 'td', 'tfoot', 'th', 'thead', 'tr', 'ul',
]);

const COMMENT = /<!--[\s\S]*?(?:-->|$)/g;
const TAG = /<\/?([A-Za-z][A-Za-z0-9:-]*)\b[^<>]*>/g;
const QUOTES = /["'\u201c\u201d\u2018\u2019]/g;
const WHITESPACE = /\s+/g;
const TRAILING = /[\s.]+$/;

// One emoji "cluster": a pictographic base (or a lone modifier) with its modifiers, variation
// selectors and tag characters, optionally joined to more of them by ZWJ.
const EMOJI_PART = '(?:\\p{Extended_Pictographic}|\\p{Emoji_Modifier})(?:\\p{Emoji_Modifier}|[\\uFE0E\\uFE0F]|[\\u{E0020}-\\u{E007F}])*';
const EMOJI = new RegExp(
  [
    '\\p{Regional_Indicator}{1,2}',
    '[#*0-9]\\uFE0F?\\u20E3',
    `${EMOJI_PART}(?:\\u200D${EMOJI_PART})*\\u200D?`,
    '[\\uFE0E\\uFE0F\\u20E3]',
    '[\\u{E0020}-\\u{E007F}]',
  ].join('|'),
  'gu',
);

/** Removes emoji (see the module comment for what counts); other text is left untouched. */
export function removeEmoji(text: string): string {
  return text.replace(EMOJI, '');
}

/** Removes HTML comments and tags; block-level tags become a space. */
export function stripTags(text: string): string {
  if (!text.includes('<')) return text;
  return text
    .replace(COMMENT, ' ')
    .replace(TAG, (_whole, name: string) => (BLOCK_TAGS.has(name.toLowerCase()) ? ' ' : ''));
}

/** All cleaning steps except the trailing period: one fragment (a string or list element). */
function cleanFragment(text: string): string {
  let s = text.normalize('NFC');
  s = decodeHtmlEntities(s);
  s = stripTags(s);
  s = s.replace(QUOTES, '');
  s = removeEmoji(s);
  return s.replace(WHITESPACE, ' ').trim();
}

/** Python-`str()`-like rendering of a value inside a flattened object (quotes are dropped later). */
function renderValue(value: unknown): string {
  if (value === null || value === undefined) return 'None';
  if (Array.isArray(value)) return `[${value.map(renderValue).join(', ')}]`;
  if (typeof value === 'object') return `{${renderObject(value as Record<string, unknown>)}}`;
  return String(value);
}

function renderObject(value: Record<string, unknown>): string {
  return Object.entries(value)
    .map(([k, v]) => `${k}: ${renderValue(v)}`)
    .join(', ');
}

function fragments(raw: unknown, out: string[]): void {
  if (raw === null || raw === undefined) return;
  if (Array.isArray(raw)) {
    for (const item of raw) fragments(item, out);
    return;
  }
  const text =
    typeof raw === 'string'
      ? raw
      : typeof raw === 'object'
        ? renderObject(raw as Record<string, unknown>)
        : String(raw);
  const cleaned = cleanFragment(text);
  if (cleaned.length > 0) out.push(cleaned);
}

/**
 * Cleans one item text value (a string, a list of strings, an object, a number) into one line
 * that ends with exactly one period, or `''` when nothing is left. Pure and deterministic.
 *
 * @example cleanText(['Lab &amp; Tools', '<b>Pipettes</b>...']) === 'Lab & Tools Pipettes.'
 */
export function cleanText(raw: unknown): string {
  const parts: string[] = [];
  fragments(raw, parts);
  const joined = parts.join(' ').replace(TRAILING, '');
  return joined.length === 0 ? '' : `${joined}.`;
}
