import { existsSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';

/**
 * Headless Chromium for tests that render pages (the report): `STREAMREC_CHROMIUM`, else the
 * system's chromium (Debian's `chromium` package, which `.ci/run` installs), driven by
 * playwright-core. Where there is none the suite is skipped, saying so (a new user's `npm test`
 * passes without a browser); `.ci/run` sets `STREAMREC_REQUIRE_BROWSER=1`, so a missing browser
 * fails there.
 */
export function chromiumPath(): string | undefined {
  const candidates = [process.env.STREAMREC_CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'];
  return candidates.find((p): p is string => p !== undefined && p !== '' && existsSync(p));
}

/** `describe` when a browser is found (or required), else `describe.skip` with a line on stderr. */
export function describeWithBrowser(): jest.Describe {
  if (chromiumPath() !== undefined || process.env.STREAMREC_REQUIRE_BROWSER === '1') return describe;
  process.stderr.write('[streamrec tests] skipped a browser suite: no chromium found (apt-get install chromium, or set STREAMREC_CHROMIUM)\n');
  return describe.skip;
}

export async function launchChromium(): Promise<Browser> {
  const executablePath = chromiumPath();
  if (!executablePath) throw new Error('no chromium found: apt-get install chromium, or set STREAMREC_CHROMIUM to a Chromium or Chrome binary');
  const { chromium } = await import('playwright-core');
  // --no-sandbox: CI runs as root in a container, where Chromium's sandbox cannot start.
  return chromium.launch({ executablePath, args: ['--no-sandbox', '--disable-gpu'] });
}

/** A page that records every console error or warning and every uncaught exception. */
export async function pageWithConsole(browser: Browser, viewport = { width: 1400, height: 900 }): Promise<{ page: Page; problems: string[] }> {
  const page = await browser.newPage({ viewport });
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`uncaught: ${e.message}`));
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()}`));
  return { page, problems };
}

/** What the report page says it drew (report/client.js's `window.streamrecReport`). */
export interface DrawnReport {
  readonly charts: ReadonlyArray<{ id: string; title: string; series: number; points: number }>;
  readonly sections: Readonly<Record<string, 'drawn' | 'empty'>>;
  readonly done: boolean;
}

/** Opens a report page (file:// or http) and waits until it has drawn every section. */
export async function openReport(page: Page, url: string): Promise<DrawnReport> {
  await page.goto(url);
  // Source text: this project's TypeScript has no DOM types.
  await page.waitForFunction('window.streamrecReport !== undefined && window.streamrecReport.done === true', null, { timeout: 30_000 });
  return (await page.evaluate('window.streamrecReport')) as DrawnReport;
}
