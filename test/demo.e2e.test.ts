import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { exited, spawnCli } from './cli';

/**
 * The README's main job, end to end on embedded defaults: MovieLens 100K replayed through the
 * ingest operators into histories and embedded ClickHouse, semantic IDs rebuilt from the
 * archive, one training epoch, and the evaluation rows read back from ClickHouse.
 */
describe('streamrec demo (the main job)', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'streamrec-demo-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('ingests, rebuilds, trains one epoch and shows evaluation rows from ClickHouse', async () => {
    const child = spawnCli(['demo', '--epochs', '1', '--data-dir', dir]);
    const { code } = await exited(child);
    const out = child.output();
    if (code !== 0) throw new Error(`demo exited with ${code}:\n${out.slice(-4000)}`);
    // Ingest: every good MovieLens rating archived, the injected bad messages dead-lettered.
    expect(out).toMatch(/interactions\s+100,000 accepted, catalog items 1,682/);
    expect(out).toMatch(/users\s+943 rolling histories/);
    const deadLetters = Number(/dead letters\s+(\d+)/.exec(out)?.[1]);
    expect(deadLetters).toBeGreaterThan(500);
    expect(out).toMatch(/'rating' │ 100000 │ 943/);
    // Training and evaluation: the table printed from ClickHouse has valid and test rows at k = 10.
    const rows = [...out.matchAll(/'(valid|test)'\s*│\s*0\s*│\s*'(recall|ndcg)'\s*│\s*10\s*│\s*([\d.]+)\s*│\s*943/g)];
    expect(rows.map((r) => `${r[1]}/${r[2]}`).sort()).toEqual(['test/ndcg', 'test/recall', 'valid/ndcg', 'valid/recall']);
    for (const r of rows) expect(Number(r[3])).toBeGreaterThan(0);
  }, 600_000);
});
