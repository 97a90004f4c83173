#!/usr/bin/env node
'use strict';
// node scripts/screenshot-report.js <report.html> <out.png> [width]
// A full-page screenshot of a report (streamrec report) in headless Chromium (STREAMREC_CHROMIUM,
// else /usr/bin/chromium), after its charts are drawn; prints what was drawn and fails on a console error.
const path = require('node:path');
const fs = require('node:fs');
const { chromium } = require('playwright-core');

async function main() {
  const [file, out, width = '1400'] = process.argv.slice(2);
  if (!file || !out) throw new Error('usage: node scripts/screenshot-report.js <report.html> <out.png> [width]');
  const executablePath = [process.env.STREAMREC_CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => p && fs.existsSync(p));
  if (!executablePath) throw new Error('no chromium found: apt-get install chromium, or set STREAMREC_CHROMIUM');
  const browser = await chromium.launch({ executablePath, args: ['--no-sandbox', '--disable-gpu'] });
  try {
    const page = await browser.newPage({ viewport: { width: Number(width), height: 900 } });
    const problems = [];
    page.on('console', (m) => (m.type() === 'error' || m.type() === 'warning') && problems.push(m.text()));
    page.on('pageerror', (e) => problems.push(e.message));
    await page.goto(`file://${path.resolve(file)}`);
    await page.waitForFunction('window.streamrecReport && window.streamrecReport.done', null, { timeout: 30000 });
    const drawn = await page.evaluate('window.streamrecReport');
    await page.screenshot({ path: out, fullPage: true });
    process.stdout.write(`${JSON.stringify({ sections: drawn.sections, charts: drawn.charts.length, out })}\n`);
    if (problems.length > 0) throw new Error(`the page logged: ${problems.join('; ')}`);
  } finally {
    await browser.close();
  }
}

main().catch((error) => {
  process.stderr.write(`${error.message}\n`);
  process.exitCode = 1;
});
