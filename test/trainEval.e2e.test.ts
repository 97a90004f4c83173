import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { exited, spawnCli } from './cli';
import { writeTinyScientific } from './tinyScientific';

/**
 * `streamrec rebuild`, `train` and `eval` as a user runs them, on a small dataset in the Scientific
 * layout with small settings: the text prior tuned by `train --text-prior` is stored with the
 * checkpoint, and `eval --text-prior tuned` reproduces the test metrics `train` printed.
 */
describe('streamrec rebuild, train --text-prior, eval --text-prior tuned', () => {
  const root = mkdtempSync(path.join(tmpdir(), 'streamrec-train-eval-'));
  const data = writeTinyScientific(mkdtempSync(path.join(root, 'data-')));
  const config = path.join(root, 'config.json');
  writeFileSync(
    config,
    JSON.stringify({
      artifacts: { dir: path.join(root, 'artifacts'), registryFile: path.join(root, 'artifacts', 'item-registry.json') },
      clickhouse: { url: `chdb:${path.join(root, 'ch')}` },
      features: { encoder: 'tfidf-lsa', pcaDims: 8, tfidfLsa: { minDf: 1 } },
      quantizer: { levels: 2, codesPerLevel: 8 },
      trainer: {
        model: { embeddingSize: 8, innerSize: 16, nLayers: 1, nHeads: 2, maxHistoryLength: 8 },
        train: { epochs: 2, batchSize: 64, warmupSteps: 5 },
      },
    }),
  );
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  async function cli(args: string[]): Promise<{ code: number | null; out: string }> {
    const child = spawnCli(['--config', config, ...args]);
    const { code } = await exited(child);
    return { code, out: child.output() };
  }

  /** `recall@10` of the metrics table printed under `label`. */
  function recallAt10(out: string, label: string): number {
    const table = out.slice(out.indexOf(label));
    const row = /^@10\s+([\d.]+)/m.exec(table);
    if (!row) throw new Error(`no @10 row after ${label} in:\n${out.slice(-3000)}`);
    return Number(row[1]);
  }

  it('keeps the tuned prior with the checkpoint and reproduces its test metrics', async () => {
    const rebuild = await cli(['rebuild', '--dataset', data]);
    if (rebuild.code !== 0) throw new Error(`rebuild exited with ${rebuild.code}:\n${rebuild.out.slice(-3000)}`);

    const train = await cli(['train', '--model', 'ccfrec', '--dataset', data, '--text-prior', '0.5,2', '--text-prior-last', '1,3', '--text-prior-pooling', 'max,mean']);
    if (train.code !== 0) throw new Error(`train exited with ${train.code}:\n${train.out.slice(-3000)}`);
    const checkpoint = /checkpoint (checkpoint-[0-9a-f]{16})/.exec(train.out)?.[1];
    expect(checkpoint).toBeDefined();
    const tuned = /text prior: weight ([\d.]+), (max|mean) over the last (\d+) items, chosen by valid ndcg@10 among 8 settings/.exec(train.out);
    expect(tuned).not.toBeNull();

    const evaluated = await cli(['eval', '--checkpoint', checkpoint as string, '--dataset', data, '--text-prior', 'tuned', '--no-clickhouse']);
    if (evaluated.code !== 0) throw new Error(`eval exited with ${evaluated.code}:\n${evaluated.out.slice(-3000)}`);
    expect(evaluated.out).toContain(`text prior weight ${Number(tuned?.[1])}, ${tuned?.[2]} over the last ${tuned?.[3]} items`);
    expect(recallAt10(evaluated.out, 'text prior weight')).toBe(recallAt10(train.out, 'test + text prior'));

    const bad = await cli(['eval', '--checkpoint', checkpoint as string, '--dataset', data, '--text-prior', 'lots', '--no-clickhouse']);
    expect(bad.code).toBe(1);
    expect(bad.out).toContain('--text-prior: expected comma-separated numbers >= 0 (e.g. 0.25,0.5,1), got "lots"');
    const badPooling = await cli(['eval', '--checkpoint', checkpoint as string, '--dataset', data, '--text-prior', '1', '--text-prior-pooling', 'median', '--no-clickhouse']);
    expect(badPooling.code).toBe(1);
    expect(badPooling.out).toContain('--text-prior-pooling: expected max or mean (or both, comma-separated), got "median"');
  }, 300_000);
});
