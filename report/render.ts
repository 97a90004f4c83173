import { readFileSync } from 'node:fs';
import path from 'node:path';
import { packageRoot } from '../version';
import type { ReportData } from './data';

/** The sections of the page, in order: id, title, and what an empty one says. */
export const SECTIONS = [
  { id: 'training', title: 'Training', empty: 'No training runs recorded yet (streamrec train, or the demo, writes them).' },
  { id: 'live', title: 'Live loop', empty: 'No micro-epochs recorded yet (streamrec run / trainer, the demo, or streamrec experiment incremental write them).' },
  { id: 'semantic-ids', title: 'Semantic IDs', empty: 'No semantic-ID builds recorded yet (streamrec rebuild writes them).' },
  { id: 'ingest', title: 'Ingest', empty: 'No events, dead letters or lag recorded yet (streamrec ingest writes them).' },
  { id: 'freshness', title: 'Freshness', empty: 'No freshness probes recorded yet (npm run bench -- freshness writes them).' },
] as const;

/** A file of the page's scripts: the charting library from npm and the page's own script. */
function asset(file: string): string {
  return readFileSync(file, 'utf8');
}

/**
 * Text safe inside a `<script>` element: `<`, `>` and `&` as JSON escapes, so no data (a run id,
 * a dataset name, a dead letter's message) can close the element or open another.
 */
export function scriptSafeJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);
}

/**
 * One self-contained HTML page: the data as JSON, echarts and the page's script inlined (it opens
 * offline, from a file or from a server). Every text from the tables reaches the page through the
 * JSON and `textContent`, never as markup.
 */
export function renderReport(data: ReportData): string {
  const root = packageRoot();
  const echarts = asset(require.resolve('echarts/dist/echarts.min.js', { paths: [root] }));
  const client = asset(path.join(root, 'report', 'client.js'));
  const nav = SECTIONS.map((s) => `<a href="#${s.id}">${escapeHtml(s.title)}</a>`).join('');
  const sections = SECTIONS.map(
    (s) => `<section id="${s.id}"><h2>${escapeHtml(s.title)}</h2><p class="empty" hidden>${escapeHtml(s.empty)}</p><div class="body"></div></section>`,
  ).join('\n');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>streamrec report</title>
<style>
  :root { --fg: #1f2937; --muted: #6b7280; --line: #e5e7eb; --bg: #f9fafb; --accent: #2563eb; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
  header { padding: 16px 24px 8px; background: #fff; border-bottom: 1px solid var(--line); }
  header h1 { margin: 0 0 4px; font-size: 20px; }
  header .meta { color: var(--muted); font-size: 12px; }
  nav { margin-top: 8px; display: flex; gap: 16px; }
  nav a { color: var(--accent); text-decoration: none; }
  main { padding: 8px 24px 48px; max-width: 1400px; margin: 0 auto; }
  section { background: #fff; border: 1px solid var(--line); border-radius: 8px; margin: 16px 0; padding: 8px 16px 16px; }
  section h2 { font-size: 17px; margin: 8px 0; }
  .empty { color: var(--muted); font-style: italic; }
  .grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(520px, 1fr)); gap: 12px; }
  .chart { min-width: 0; overflow: hidden; }
  .chart { height: 320px; border: 1px solid var(--line); border-radius: 6px; }
  .note { color: var(--muted); font-size: 12px; margin: 4px 0 8px; }
  .cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 8px 0; }
  .card { border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px; min-width: 150px; }
  .card b { display: block; font-size: 18px; }
  .card span { color: var(--muted); font-size: 12px; }
  table { border-collapse: collapse; width: 100%; margin: 8px 0 12px; font-size: 13px; }
  th, td { border-bottom: 1px solid var(--line); padding: 4px 8px; text-align: left; white-space: nowrap; }
  th { cursor: pointer; user-select: none; background: var(--bg); position: relative; }
  th[data-sort="asc"]::after { content: " \\25B2"; font-size: 10px; }
  th[data-sort="desc"]::after { content: " \\25BC"; font-size: 10px; }
  td.num { text-align: right; font-variant-numeric: tabular-nums; }
  .scroll { overflow-x: auto; }
</style>
</head>
<body>
<header>
  <h1>streamrec report</h1>
  <div class="meta" id="meta"></div>
  <nav>${nav}</nav>
</header>
<main>
${sections}
</main>
<script type="application/json" id="report-data">${scriptSafeJson(data)}</script>
<script>${echarts}</script>
<script>${client}</script>
</body>
</html>
`;
}
