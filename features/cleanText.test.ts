import { cleanText, removeEmoji, stripTags } from './cleanText';
import { decodeHtmlEntities } from './htmlEntities';

describe('decodeHtmlEntities', () => {
  it('decodes named and numeric references once, like Python html.unescape', () => {
    expect(decodeHtmlEntities('Tom &amp; Jerry &lt;3 &gt; &quot;q&quot; &apos;a&apos;')).toBe('Tom & Jerry <3 > "q" \'a\'');
    expect(decodeHtmlEntities('&eacute;t&eacute; &frac12; &times; &deg;C &hellip; &mdash;&ndash;')).toBe('été ½ × °C … —–');
    expect(decodeHtmlEntities('&#169; &#xA9; &#X2122; &#8230 &#x1F600;')).toBe('© © ™ … 😀');
    expect(decodeHtmlEntities('&amp;lt;b&amp;gt;')).toBe('&lt;b&gt;');
  });

  it('maps invalid and C1 code points as HTML5 does and leaves unknown names alone', () => {
    expect(decodeHtmlEntities('&#0;|&#xD800;|&#x110000;')).toBe('\ufffd|\ufffd|\ufffd');
    expect(decodeHtmlEntities('&#150;&#x80;&#153;')).toBe('–€™');
    expect(decodeHtmlEntities('a&#1;b &#x7f;c')).toBe('ab c');
    expect(decodeHtmlEntities('&bogus; & &amp &;')).toBe('&bogus; & &amp &;');
  });
});

describe('stripTags and removeEmoji', () => {
  it('removes nested, attribute-laden and comment markup; block tags separate words', () => {
    expect(stripTags('<div class="x"><p>Hello <b>wor<i>ld</i></b></p><p>Next</p></div>')).toBe('  Hello world  Next  ');
    expect(stripTags('line<br/>break <!-- hidden <b>x</b> --> tail <a href="u?a=1&b=2">link</A>')).toBe('line break   tail link');
    expect(stripTags('a < b and 3<4 and <3')).toBe('a < b and 3<4 and <3');
  });

  it('removes emoji sequences of every kind and nothing else', () => {
    const cases: Array<[string, string]> = [
      ['thumbs 👍🏽 up', 'thumbs  up'], // skin-tone modifier
      ['family 👨‍👩‍👧‍👦!', 'family !'], // ZWJ sequence
      ['flag 🇺🇸🇯🇵 end', 'flag  end'], // regional indicators
      ['keycap 1️⃣ #⃣ but 10 pcs', 'keycap   but 10 pcs'], // keycaps, digits kept
      ['scotland 🏴󠁧󠁢󠁳󠁣󠁴󠁿.', 'scotland .'], // tag sequence
      ['love ❤️ it ☺︎', 'love  it '], // variation selectors
      ['pride 🏳️‍🌈 and a lone 🏿', 'pride  and a lone '],
      ['Scotch® Tape™ ©2020', 'Scotch Tape 2020'],
      ['star ★ check ✓ arrows →', 'star ★ check ✓ arrows →'],
    ];
    for (const [input, expected] of cases) expect(removeEmoji(input)).toBe(expected);
  });

  it('keeps non-Latin scripts, including ZWJ inside Indic words', () => {
    const hindi = 'क्‍ष प्रयोगशाला';
    expect(removeEmoji(hindi)).toBe(hindi);
    expect(removeEmoji('实验室移液器 Пипетка مختبر')).toBe('实验室移液器 Пипетка مختبر');
  });
});

describe('cleanText', () => {
  it('ends with exactly one period and gives empty for empty input', () => {
    expect(cleanText('Sanding Roll')).toBe('Sanding Roll.');
    expect(cleanText('Sanding Roll...')).toBe('Sanding Roll.');
    expect(cleanText('Sanding Roll . . .  ')).toBe('Sanding Roll.');
    expect(cleanText('Great!')).toBe('Great!.');
    expect(cleanText('')).toBe('');
    expect(cleanText('   \n ')).toBe('');
    expect(cleanText('...')).toBe('');
    expect(cleanText('😀 🎉')).toBe('');
    expect(cleanText(null)).toBe('');
    expect(cleanText(undefined)).toBe('');
    expect(cleanText([])).toBe('');
  });

  it('applies the seed steps in order on a nasty input', () => {
    const raw = '<p>3M&trade; &quot;Scotch&quot; tape&nbsp;&amp; glue</p>\r\n<ul><li>It&#39;s <b>strong</b> 💪🏾</li><li>Don’t&hellip;</li></ul>..';
    expect(cleanText(raw)).toBe('3M Scotch tape & glue Its strong Dont….');
  });

  it('decodes entities before stripping tags, as the seed does', () => {
    expect(cleanText('&lt;b&gt;bold&lt;/b&gt; text')).toBe('bold text.');
    expect(cleanText('x &amp;lt;b&amp;gt; y')).toBe('x &lt;b&gt; y.');
  });

  it('joins list elements with a space after cleaning each, dropping empty ones', () => {
    expect(cleanText(['Industrial & Scientific', '<b>Lab</b> Supplies', '', '  ', ['Pipettes', 'Tips.']])).toBe(
      'Industrial & Scientific Lab Supplies Pipettes Tips.',
    );
  });

  it('flattens objects like str(dict) without braces and quotes; prints numbers', () => {
    expect(cleanText({ brand: 'Acme', size: 3, tags: ['a', "b'c"], nested: { x: null } })).toBe(
      'brand: Acme, size: 3, tags: [a, bc], nested: {x: None}.',
    );
    expect(cleanText(42)).toBe('42.');
  });

  it('keeps non-Latin text and normalises to NFC', () => {
    expect(cleanText('实验室移液器')).toBe('实验室移液器.');
    expect(cleanText('Пипетка лабораторная\n1000 мкл')).toBe('Пипетка лабораторная 1000 мкл.');
    expect(cleanText('Cafe\u0301')).toBe('Café.');
  });

  it('is idempotent on its own output', () => {
    for (const raw of ['<i>a</i> b...', 'x &amp; y', 'Great! 😀', 'tab\there']) {
      const once = cleanText(raw);
      expect(cleanText(once)).toBe(once);
    }
  });
});
