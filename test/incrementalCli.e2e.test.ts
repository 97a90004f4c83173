import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openClickHouse } from '../infra/clickhouse';
import { ClickHouseConfig } from '../schemas/config';
import { exited, spawnCli } from './cli';

/**
 * `streamrec experiment incremental` as a user runs it, on a small synthetic drifting world with
 * small settings: every method scores every window, the table and the summary line are printed,
 * and one micro_epochs row per method and window lands in (embedded) ClickHouse.
 */
describe('streamrec experiment incremental', () => {
  const root = mkdtempSync(path.join(tmpdir(), 'streamrec-incremental-'));
  const config = path.join(root, 'config.json');
  const chDir = path.join(root, 'ch');
  writeFileSync(
    config,
    JSON.stringify({
      artifacts: { dir: path.join(root, 'artifacts'), registryFile: path.join(root, 'artifacts', 'item-registry.json') },
      clickhouse: { url: `chdb:${chDir}` },
      trainer: { model: { embeddingSize: 16, innerSize: 32, nLayers: 1, nHeads: 2, maxHistoryLength: 8 }, train: { epochs: 3, batchSize: 64, warmupSteps: 5 } },
    }),
  );
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('compares static, micro-epochs and retraining on every window and writes the rows', async () => {
    const dataset = 'synthetic:users=80,items=120,seed=5';
    const child = spawnCli(['--config', config, 'experiment', 'incremental', '--model', 'sasrec', '--dataset', dataset, '--windows', '3', '--micro-steps', '10']);
    const { code } = await exited(child);
    const out = child.output();
    if (code !== 0) throw new Error(`experiment exited with ${code}:\n${out.slice(-3000)}`);
    for (const method of ['static', 'micro', 'retrain']) for (let w = 1; w <= 3; w++) expect(out).toContain(`[${method} window ${w}/3]`);
    expect(out).toMatch(/^method\s+ndcg@10\s+recall@10\s+examples\s+training s$/m);
    const summary = JSON.parse(out.trim().split('\n').at(-1) as string) as Record<string, unknown>;
    expect(summary).toMatchObject({ model: 'sasrec', windows: 3 });
    expect(Object.keys(summary)).toEqual(expect.arrayContaining(['static', 'micro', 'retrain']));
    // Every method ran: every ratio is a number (null only when one it needs did not run).
    for (const key of ['micro_vs_retrain_ndcg', 'micro_compute_share', 'micro_sample_share', 'micro_vs_static_ndcg']) expect({ key, value: typeof summary[key] }).toEqual({ key, value: 'number' });

    const ch = await openClickHouse(ClickHouseConfig.parse({ url: `chdb:${chDir}` }));
    try {
      const rows = await ch.query<{ method: string; n: string; steps: string; examples: string }>(
        `SELECT method, count() AS n, sum(steps) AS steps, sum(examples) AS examples FROM ${ch.table('micro_epochs')} GROUP BY method ORDER BY method`,
      );
      expect(rows.map((r) => [r.method, Number(r.n)])).toEqual([
        ['micro', 3],
        ['retrain', 3],
        ['static', 3],
      ]);
      // Same windows, same examples for every method; micro-epochs trained within their bound.
      expect(new Set(rows.map((r) => Number(r.examples))).size).toBe(1);
      const micro = rows.find((r) => r.method === 'micro');
      expect(Number(micro?.steps)).toBeGreaterThan(0);
      expect(Number(micro?.steps)).toBeLessThanOrEqual(30);
      // Each window's stream position: the interactions before its end, growing by the window's events.
      const marks = await ch.query<{ window: number; stream: string; events: string }>(
        `SELECT micro_epoch AS window, watermark['stream'] AS stream, events FROM ${ch.table('micro_epochs')} FINAL WHERE method = 'micro' ORDER BY micro_epoch`,
      );
      const streams = marks.map((r) => Number(r.stream));
      for (let w = 1; w < streams.length; w++) expect(streams[w]).toBe((streams[w - 1] as number) + Number(marks[w]?.events));
      expect((streams.at(-1) as number) - (streams[0] as number) + Number(marks[0]?.events)).toBe(summary.stream_events);
    } finally {
      await ch.close();
    }
  }, 300_000);

  it('refuses bad flags with a message naming them', async () => {
    for (const [args, message] of [
      [['--windows', '0'], /--windows: expected a positive integer, got "0"/],
      [['--methods', 'static,nope'], /--methods: expected a comma-separated list of static, micro, retrain, got "static,nope"/],
      [['--train-fraction', '1.5'], /--train-fraction: expected a number between 0 and 1, got "1.5"/],
    ] as const) {
      const child = spawnCli(['--config', config, 'experiment', 'incremental', '--model', 'sasrec', '--dataset', 'synthetic:users=20,items=30', ...args]);
      const { code } = await exited(child);
      expect(code).toBe(1);
      expect(child.output()).toMatch(message);
    }
  }, 120_000);
});
