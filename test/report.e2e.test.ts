import { copyFileSync, mkdtempSync, readFileSync, statSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Browser, Page } from 'playwright-core';
import { openClickHouse, type ClickHouse } from '../infra/clickhouse';
import { writeReport } from '../report';
import { fillReportTables } from '../report/testing/fixture';
import { ClickHouseConfig } from '../schemas/config';
import { ServingConfig } from '../schemas/serving';
import { MemoryHistories, ModelHolder, buildServer } from '../serving';
import { describeWithBrowser, launchChromium, openReport, pageWithConsole } from './browser';

const HOSTILE = '</script><script>window.pwned=1</script><img src=x onerror="window.pwned=2">';

/** Every chart the page draws when each table holds rows (report/client.js). */
const CHARTS = [
  'valid-ndcg-10',
  'valid-recall-10',
  'train-loss',
  'loss-parts',
  'prequential-ndcg-10',
  'prequential-recall-10',
  'gate',
  'publications',
  'micro-compute',
  'code-utilisation',
  'collisions-error',
  'events',
  'dead-letters',
  'lag',
  'freshness-history',
  'freshness-changelog_history',
  'freshness-model',
  'freshness-new_item',
];

// What runs in the page is given as source text: this project's TypeScript has no DOM types.

/**
 * Per chart: pixels of its canvas that are not the background (what echarts actually painted), and
 * whether the canvas fits its box (a canvas wider than its box draws over the next chart).
 */
async function paintedPixels(page: Page): Promise<Record<string, { painted: number; fits: boolean }>> {
  return (await page.evaluate(`(() => {
    const out = {};
    document.querySelectorAll('.chart').forEach((box) => {
      const canvas = box.querySelector('canvas');
      const ctx = canvas && canvas.getContext('2d');
      if (!ctx) return;
      const { data } = ctx.getImageData(0, 0, canvas.width, canvas.height);
      let painted = 0;
      for (let i = 0; i < data.length; i += 4) if (data[i + 3] > 0 && (data[i] < 235 || data[i + 1] < 235 || data[i + 2] < 235)) painted++;
      const c = canvas.getBoundingClientRect();
      const b = box.getBoundingClientRect();
      out[box.dataset.chart] = { painted, fits: c.left >= b.left - 1 && c.right <= b.right + 1 && c.bottom <= b.bottom + 1 };
    });
    return out;
  })()`)) as Record<string, { painted: number; fits: boolean }>;
}

/**
 * The report as people see it: written by `writeReport` from embedded ClickHouse holding rows in
 * every table (report/testing/fixture.ts), opened in headless Chromium from the file and from
 * `streamrec serve`'s /report, with table text that tries to break out of the page.
 */
describeWithBrowser()('the report in headless Chromium', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'streamrec-report-e2e-'));
  const chUrl = `chdb:${path.join(dir, 'clickhouse')}`;
  const file = path.join(dir, 'report.html');
  const emptyFile = path.join(dir, 'empty.html');
  let ch: ClickHouse;
  let browser: Browser;

  beforeAll(async () => {
    ch = await openClickHouse(ClickHouseConfig.parse({ url: chUrl }));
    await fillReportTables(ch, { hostile: HOSTILE });
    await writeReport(ClickHouseConfig.parse({ url: chUrl }), { out: file });
    await writeReport(ClickHouseConfig.parse({ url: chUrl, database: 'nothing_yet' }), { out: emptyFile });
    browser = await launchChromium();
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    await ch?.close();
  });

  it('draws every chart with its data points, paints every canvas, logs no console error, and shows table text as text', async () => {
    const { page, problems } = await pageWithConsole(browser);
    const drawn = await openReport(page, `file://${file}`);
    expect(drawn.sections).toEqual({ training: 'drawn', live: 'drawn', 'semantic-ids': 'drawn', ingest: 'drawn', freshness: 'drawn' });
    expect(drawn.charts.map((c) => c.id).sort()).toEqual([...CHARTS].sort());
    for (const c of drawn.charts) {
      expect(c.series).toBeGreaterThan(0);
      expect(c.points).toBeGreaterThan(0);
    }
    const byId = Object.fromEntries(drawn.charts.map((c) => [c.id, c]));
    expect(byId['loss-parts']).toMatchObject({ series: 4 }); // ccfrec: rec, mlm, cl; sasrec: rec
    expect(byId['valid-ndcg-10']).toMatchObject({ series: 2, points: 8 });
    expect(byId['prequential-ndcg-10']).toMatchObject({ series: 4, points: 6 + 3 * 5 }); // live + static, micro, retrain
    // The gate chart: the live version's line, 4 accepted and 2 refused candidates, read from echarts itself.
    const gate = await page.evaluate(
      "echarts.getInstanceByDom(document.querySelector('[data-chart=\"gate\"]')).getOption().series.map((s) => [s.name, s.data.length])",
    );
    expect(gate).toEqual([
      ['live version', 6],
      ['candidate accepted', 4],
      ['candidate refused', 2],
    ]);
    const painted = await paintedPixels(page);
    expect(Object.keys(painted).sort()).toEqual([...CHARTS].sort());
    for (const [id, p] of Object.entries(painted)) expect([id, p.painted > 2000, p.fits]).toEqual([id, true, true]);
    // The hostile run id and dataset are text in the training table; nothing ran.
    expect(await page.evaluate('window.pwned')).toBeUndefined();
    expect(await page.locator('#training table').innerText()).toContain(HOSTILE);
    // The live loop's full rebuilds: a table of their own after the runs', reasons as text.
    const rebuilds = page.locator('#live table').nth(1);
    expect(await rebuilds.locator('tbody tr').count()).toBe(2);
    const rebuildText = await rebuilds.innerText();
    for (const text of ['refused', 'published', 'drift', 'schedule', HOSTILE]) expect(rebuildText).toContain(text);
    expect(problems).toEqual([]);
    await page.close();
  }, 60_000);

  it('sorts a table by the column clicked, both ways, numbers as numbers', async () => {
    const { page, problems } = await pageWithConsole(browser);
    await openReport(page, `file://${file}`);
    const column = async (): Promise<number[]> =>
      (await page.evaluate(`(() => {
        const table = document.querySelector('#live table');
        const index = [...table.querySelectorAll('th')].findIndex((th) => th.textContent === 'events');
        return [...table.querySelectorAll('tbody tr')].map((tr) => Number(tr.children[index].textContent.replace(/,/g, '')));
      })()`)) as number[];
    await page.locator('#live table th', { hasText: /^events$/ }).click();
    const up = await column();
    expect(up).toEqual([...up].sort((a, b) => a - b));
    await page.locator('#live table th', { hasText: /^events$/ }).click();
    const down = await column();
    expect(down).toEqual([...up].reverse());
    expect(new Set(down).size).toBeGreaterThan(1);
    expect(problems).toEqual([]);
    // The whole page renders to a screenshot of some substance.
    const shot = path.join(dir, 'report.png');
    await page.screenshot({ path: shot, fullPage: true });
    expect(statSync(shot).size).toBeGreaterThan(100_000);
    await page.close();
  }, 60_000);

  it('a database with nothing recorded: every section says so, no chart, no console error', async () => {
    const { page, problems } = await pageWithConsole(browser);
    const drawn = await openReport(page, `file://${emptyFile}`);
    expect(Object.values(drawn.sections)).toEqual(['empty', 'empty', 'empty', 'empty', 'empty']);
    expect(drawn.charts).toEqual([]);
    expect(await page.locator('.empty:visible').count()).toBe(5);
    expect(problems).toEqual([]);
    await page.close();
  }, 60_000);

  it('streamrec serve answers it at /report (no key, its content policy lets it draw and reach nothing else), reads it again when it changes, 404 without one', async () => {
    const servers: FastifyInstance[] = [];
    const serve = async (reportFile: string): Promise<string> => {
      const app = buildServer({
        config: ServingConfig.parse({ reportFile, adminApiKey: 'k' }),
        models: new ModelHolder(async () => {
          throw new Error('no model in this test');
        }),
        histories: new MemoryHistories(),
      });
      servers.push(app);
      return app.listen({ port: 0, host: '127.0.0.1' });
    };
    try {
      const served = path.join(dir, 'served.html');
      copyFileSync(file, served);
      const url = await serve(served);
      const response = await fetch(`${url}/report`);
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toBe('text/html; charset=utf-8');
      expect(response.headers.get('content-security-policy')).toContain("default-src 'none'");
      const { page, problems } = await pageWithConsole(browser);
      const drawn = await openReport(page, `${url}/report`);
      expect(drawn.charts).toHaveLength(CHARTS.length);
      expect(problems).toEqual([]);
      await page.close();
      // A newer report is served as soon as it is written.
      copyFileSync(emptyFile, served);
      const later = new Date(Date.now() + 5000);
      utimesSync(served, later, later);
      expect(await (await fetch(`${url}/report`)).text()).toBe(readFileSync(emptyFile, 'utf8'));

      const missing = await serve(path.join(dir, 'not-written.html'));
      const none = await fetch(`${missing}/report`);
      expect(none.status).toBe(404);
      expect(((await none.json()) as { error: { code: string; message: string } }).error).toMatchObject({ code: 'no_report', message: expect.stringContaining('not-written.html') });
      const unset = await serve('');
      expect((await fetch(`${unset}/report`)).status).toBe(404);
    } finally {
      await Promise.all(servers.map((s) => s.close()));
    }
  }, 60_000);
});
