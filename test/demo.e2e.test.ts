import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { generateSyntheticWorld } from '../datasets';
import { chromiumPath, launchChromium, openReport, pageWithConsole } from './browser';
import { exited } from './cli';

const ROOT = path.resolve(__dirname, '..');
const WORLD = 'synthetic:users=300,items=400,seed=5';

/**
 * The README's main job as a user runs it (`bin/streamrec.js demo`, the default log level, no
 * TensorFlow log setting of our own) on a small synthetic world with one epoch: ingest with dead
 * letters, semantic IDs, CCFRec trained and evaluated with rows in ClickHouse, the checkpoint
 * published, micro-epochs on the rest of the stream (published when the gate passes, rows in
 * ClickHouse), recommendations from the live model. The terminal is for a person: tables, no JSON
 * log lines, no TensorFlow start-up chatter; the logs are in the demo's log file.
 */
/** The environment a user runs the demo in: the default log level, no TensorFlow log setting of ours, not under jest (the CLI silences its logs there). */
function userEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.STREAMREC_LOG_LEVEL;
  delete env.TF_CPP_MIN_LOG_LEVEL;
  delete env.JEST_WORKER_ID;
  return env;
}

describe('streamrec demo (the main job)', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'streamrec-demo-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('ingests, rebuilds, trains CCFRec, evaluates, publishes, serves, runs micro-epochs as the stream goes on (the server swapping to each) and answers over HTTP, with logs in a file', async () => {
    const child = spawn(process.execPath, [path.join(ROOT, 'bin', 'streamrec.js'), 'demo', '--dataset', WORLD, '--epochs', '1', '--data-dir', dir, '--port', '0', '--duration', '24'], { cwd: ROOT, env: userEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const { code } = await exited(child);
    if (code !== 0) throw new Error(`demo exited with ${code}:\n${out.slice(-3000)}\n${err.slice(-3000)}`);

    // A terminal for a person: no JSON log lines, no TensorFlow start-up lines, anywhere.
    for (const text of [out, err]) {
      expect(text).not.toMatch(/^\s*\{"level"/m);
      expect(text).not.toMatch(/cpu_feature_guard|oneDNN|absl::InitializeLog/);
    }
    const log = readFileSync(path.join(dir, 'demo.log'), 'utf8');
    expect(out).toContain(`logs in ${path.join(dir, 'demo.log')}`);
    expect(log).toMatch(/"msg":"ingest stopped"/);
    expect(log).toMatch(/"msg":"run end"/);

    // Ingest: the first 80% of the interactions before training (the rest streams in later), the
    // injected bad messages dead-lettered; in the end every interaction accepted, every user a history.
    const { dataset } = generateSyntheticWorld({ users: 300, items: 400, seed: 5 });
    const interactions = dataset.sequences.reduce((n, s) => n + s.itemIds.length, 0);
    const firstPart = Math.floor(interactions * 0.8);
    expect(out).toMatch(new RegExp(`interactions\\s+${firstPart.toLocaleString('en-US')}\\s+accepted`));
    const deadLetters = [...out.matchAll(/dead letters: \w+\s+(\d+)/g)].reduce((n, m) => n + Number(m[1]), 0);
    expect(deadLetters).toBeGreaterThan(15);
    expect(out).toMatch(new RegExp(`click\\s+${firstPart}\\s+\\d+`));
    expect(out).toMatch(new RegExp(`ingest in all: ${interactions.toLocaleString('en-US')} interactions accepted, \\d+ dead letters, 300 users with rolling histories`));

    // Semantic IDs and training.
    expect(out).toMatch(/rqkmeans\s+4 x 256/);
    expect(out).toMatch(/ccfrec on clickhouse:streamrec/);
    const checkpoint = /checkpoint (checkpoint-[0-9a-f]{16})/.exec(out)?.[1];
    expect(checkpoint).toBeDefined();
    // Beside the popularity baseline on the same split, the model with its tuned prior is far ahead.
    const popular = Number(/popularity baseline on the same split: recall@10 ([\d.]+)/.exec(out)?.[1]);
    const fused = Number(/^test \+ text prior[\s\S]*?^@10\s+([\d.]+)/m.exec(out)?.[1]);
    expect(popular).toBeLessThan(0.2);
    expect(fused).toBeGreaterThan(popular + 0.1);
    // The evaluation rows read back from ClickHouse: test recall and ndcg at 10 over the users of the first part.
    const rows = [...out.matchAll(/^test\s+(recall|ndcg)\s+10\s+([\d.]+)\s+(\d+)\s/gm)];
    expect(rows.map((r) => r[1]).sort()).toEqual(expect.arrayContaining(['ndcg', 'recall']));
    for (const r of rows) {
      expect(Number(r[2])).toBeGreaterThan(0);
      expect(Number(r[3])).toBeGreaterThan(250);
    }

    // Published, then the live loop while the rest of the stream flows in: micro-epochs on what
    // arrived, some before the stream ended, together reading exactly the rest once; those that
    // pass the gate are published as the next versions.
    expect(out).toContain(`version 1 is live: ${checkpoint}`);
    expect(existsSync(path.join(dir, 'model-registry', 'LIVE'))).toBe(true);
    const number = (text: string | undefined): number => Number((text as string).replace(/,/g, ''));
    const parts = [...out.matchAll(/^ {2}micro-epoch (\d+): ([\d,]+) interactions \(([\d,]+) of the ([\d,]+) archived when it read\), (published as version (\d+)|not published)/gm)];
    expect(parts.map((m) => Number(m[1]))).toEqual(parts.map((_, i) => i + 1));
    // Several windows, the first read before the rest of the stream was in: trained while it flowed.
    expect(parts.length).toBeGreaterThanOrEqual(2);
    expect(number(parts[0]?.[3])).toBeLessThan(interactions - firstPart);
    let read = 0;
    for (const m of parts) expect([number(m[3]), number(m[4])]).toEqual([(read += number(m[2])), interactions - firstPart]);
    expect(read).toBe(interactions - firstPart);
    const published = parts.filter((m) => m[6] !== undefined).map((m) => Number(m[6]));
    expect(published.length).toBeGreaterThan(0);
    expect(published).toEqual(published.map((_, i) => i + 2));
    const microRows = [...out.matchAll(/^(\d+)\s+\d+\s+\d+\s+[\d.]+\s+\d+\s+[\d.]+\s+[01]\s+-?\d+$/gm)];
    expect(microRows).toHaveLength(parts.length);
    // Served over HTTP by the demo's server, which swapped to each publication as it came.
    const served = /Serving: recommendations over HTTP \((http:\/\/[^)]+)\) from the live model \(version (\d+)\)/.exec(out);
    expect(Number(served?.[2])).toBe(1 + published.length);
    expect([...out.matchAll(/recommended by version (\d+)/g)].map((m) => Number(m[1]))).toEqual([1, 1, 1].map(() => 1 + published.length));
    expect(out).toContain(`curl '${served?.[1]}/v1/users/`);
    // The report of the run, from the ClickHouse tables: every section the demo writes rows for.
    const reportFile = /^The report \(.*\): (\S+)$/m.exec(out)?.[1];
    expect(reportFile).toBe(path.join(dir, 'report.html'));
    expect(out).toContain(`${served?.[1]}/report`);
    const html = readFileSync(reportFile as string, 'utf8');
    const data = JSON.parse(/<script type="application\/json" id="report-data">([\s\S]*?)<\/script>/.exec(html)?.[1] ?? 'null') as {
      training: { runs: Array<{ checkpointId: string; test: Record<string, number> }> };
      live: { microEpochs: Array<{ method: string; publishedVersion: number }> };
      semanticIds: { builds: Array<{ kind: string; method: string; items: number }> };
      ingest: { totals: { interactions: number; deadLetters: number } };
    };
    expect(data.training.runs.map((r) => r.checkpointId)).toEqual([checkpoint]);
    expect(data.training.runs[0]?.test['ndcg@10']).toBeGreaterThan(0);
    expect(data.live.microEpochs.filter((m) => m.method === 'live')).toHaveLength(parts.length);
    expect(data.live.microEpochs.filter((m) => m.publishedVersion > 0).map((m) => m.publishedVersion)).toEqual(published);
    expect(data.semanticIds.builds).toEqual([expect.objectContaining({ kind: 'rebuild', method: 'rqkmeans', items: 400 })]);
    const allDeadLetters = Number(/ingest in all: [\d,]+ interactions accepted, (\d+) dead letters/.exec(out)?.[1]);
    expect(data.ingest.totals).toEqual({ interactions, items: 400, deadLetters: allDeadLetters });
    // The page itself in headless Chromium, where there is one (.ci/run requires it): each section
    // the demo wrote rows for draws its charts with points; freshness (a benchmark's rows) says
    // nothing was recorded; no console error.
    if (chromiumPath() !== undefined || process.env.STREAMREC_REQUIRE_BROWSER === '1') {
      const browser = await launchChromium();
      try {
        const { page, problems } = await pageWithConsole(browser);
        const drawn = await openReport(page, `file://${reportFile as string}`);
        expect(drawn.sections).toEqual({ training: 'drawn', live: 'drawn', 'semantic-ids': 'drawn', ingest: 'drawn', freshness: 'empty' });
        expect(drawn.charts.map((c) => c.id)).toEqual(
          expect.arrayContaining(['valid-ndcg-10', 'train-loss', 'loss-parts', 'prequential-ndcg-10', 'gate', 'publications', 'code-utilisation', 'collisions-error', 'events', 'dead-letters']),
        );
        for (const c of drawn.charts) expect([c.id, c.points > 0]).toEqual([c.id, true]);
        expect(problems).toEqual([]);
      } finally {
        await browser.close();
      }
    }
    // --duration: the rest of the stream flowed in over that long (the loop training meanwhile);
    // where to ask the server was printed as it started serving, and it stopped with the demo.
    expect(out).toMatch(/flow in over ~24 s while the live trainer/);
    const servedAt = out.indexOf('ask it yourself while the demo runs:');
    expect(servedAt).toBeGreaterThan(0);
    expect(servedAt).toBeLessThan(out.indexOf('[5/6]'));
    expect(out.slice(servedAt)).toMatch(/^ask it yourself while the demo runs:\n\s+curl 'http:\/\/\S+\/v1\/users\/\S+\/recommendations\?k=5'/);
    expect(out).toMatch(/server on http:\/\/\S+ stopped/);
    // Recommendations from the live model: 5 catalog items per user, none it already has.
    const users = [...out.matchAll(/user (\S+), last items/g)].map((m) => m[1] as string);
    expect(users).toHaveLength(3);
    const catalog = new Set(dataset.items.map((i) => i.itemId));
    for (const userId of users) {
      const block = out.slice(out.indexOf(`user ${userId}, last items`)).split('\n').slice(3, 8);
      const items = block.map((line) => /^\d\s+(\S+)/.exec(line)?.[1]);
      expect(items.every((i) => i !== undefined && catalog.has(i))).toBe(true);
      const history = new Set(dataset.sequences.find((s) => s.userId === userId)?.itemIds.slice(-50));
      expect(items.filter((i) => history.has(i as string))).toEqual([]);
    }
  }, 900_000);

  it('stops cleanly on Ctrl-C while the stream flows: the micro-epoch under way finishes, the server drains, ingest flushes, exit 0', async () => {
    const stopDir = mkdtempSync(path.join(tmpdir(), 'streamrec-demo-stop-'));
    try {
      const child = spawn(process.execPath, [path.join(ROOT, 'bin', 'streamrec.js'), 'demo', '--dataset', WORLD, '--epochs', '1', '--data-dir', stopDir, '--port', '0'], { cwd: ROOT, env: userEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      const deadline = Date.now() + 600_000;
      while (!/^ {2}micro-epoch 1: /m.test(out) && child.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      expect(out).toMatch(/^ {2}micro-epoch 1: /m);
      child.kill('SIGINT');
      const { code } = await exited(child);
      expect({ code, tail: code === 0 ? '' : out.slice(-2000) }).toEqual({ code: 0, tail: '' });
      expect(out).toContain('stopping: finishing the step under way, then closing ingest and the server');
      expect(out).toMatch(/server on http:\/\/\S+ stopped/);
      expect(out).toMatch(/demo stopped \(Ctrl-C\)/);
      expect(out).not.toContain('[6/6]');
      // Stopped while the stream still flowed: no micro-epoch had read all of the rest.
      const archivedCounts = [...out.matchAll(/^ {2}micro-epoch \d+: [\d,]+ interactions \(([\d,]+) of the ([\d,]+) archived when it read\)/gm)].map((m) => [Number(m[1]?.replace(/,/g, '')), Number(m[2]?.replace(/,/g, ''))]);
      expect(archivedCounts.length).toBeGreaterThan(0);
      for (const [read, total] of archivedCounts) expect(read).toBeLessThan(total as number);
      const log = readFileSync(path.join(stopDir, 'demo.log'), 'utf8');
      expect(log).toMatch(/"msg":"ingest stopped"/);
      expect(existsSync(path.join(stopDir, 'model-registry', 'LIVE'))).toBe(true);
    } finally {
      rmSync(stopDir, { recursive: true, force: true });
    }
  }, 900_000);
});
