import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ArtifactStore } from '../infra/artifacts';
import { BufferedWriter, openClickHouse, type ClickHouse } from '../infra/clickhouse';
import { initTf } from '../infra/tf';
import { ClickHouseConfig } from '../schemas/config';
import { ClickHouseTrainingObserver } from './clickhouseObserver';
import { trainAndEvaluate } from './experiment';
import { itemIdMappingFromList } from './sideInfo';
import { tinyConfig, tinyDataset, walkTextSideInfo } from './testing/fixtures';

describe('a small train + eval run writes its rows into embedded ClickHouse', () => {
  let ch: ClickHouse;
  beforeAll(async () => {
    await initTf();
    ch = await openClickHouse(ClickHouseConfig.parse({ url: `chdb:${mkdtempSync(path.join(tmpdir(), 'streamrec-train-ch-'))}` }));
  });
  afterAll(async () => {
    await ch.close();
  });

  it('records the run, every epoch and every metric, and analysts can read them back', async () => {
    const writer = new BufferedWriter({ sink: (table, rows) => ch.insert(table, rows), intervalMs: 50 });
    const dataset = tinyDataset();
    const result = await trainAndEvaluate({
      dataset,
      itemIds: itemIdMappingFromList(dataset.items.map((i) => i.itemId)),
      sideInfo: walkTextSideInfo(),
      store: new ArtifactStore(mkdtempSync(path.join(tmpdir(), 'streamrec-train-ch-art-'))),
      observer: new ClickHouseTrainingObserver(writer),
      runId: 'ch-run-1',
      config: tinyConfig('ccfrec', { train: { epochs: 2, batchSize: 32 }, eval: { textPrior: { weights: [0.5, 2], lastItems: 2 } } }),
    });
    await writer.close();

    const [run] = await ch.query<Record<string, unknown>>(
      `SELECT model, status, epochs, checkpoint_id, artifacts['semanticIds'] AS codes FROM ${ch.table('training_runs')} FINAL WHERE run_id = 'ch-run-1'`,
    );
    expect(run).toEqual({ model: 'ccfrec', status: 'completed', epochs: 2, checkpoint_id: result.checkpointId, codes: 'semantic_ids-0123456789abcdef' });

    const epochs = await ch.query<{ epoch: number; parts: string[] }>(
      `SELECT epoch, arraySort(mapKeys(loss_parts)) AS parts FROM ${ch.table('training_epochs')} FINAL WHERE run_id = 'ch-run-1' ORDER BY epoch`,
    );
    expect(epochs).toEqual([
      { epoch: 0, parts: ['cl', 'mlm', 'rec'] },
      { epoch: 1, parts: ['cl', 'mlm', 'rec'] },
    ]);

    const test = await ch.query<{ metric: string; k: number; value: number; users: number; model_version: string }>(
      `SELECT metric, k, value, users_evaluated AS users, model_version FROM ${ch.table('evaluation_results')} FINAL
       WHERE run_id = 'ch-run-1' AND split = 'test' AND text_prior_last = 0 ORDER BY metric, k`,
    );
    expect(test.length).toBe(Object.keys(result.test.metrics).length);
    for (const row of test) {
      expect(row.value).toBeCloseTo(result.test.metrics[`${row.metric}@${row.k}`] as number, 6);
      expect(row.users).toBe(40);
      expect(row.model_version).toBe(result.checkpointId);
    }

    // The tuned text prior: its weight was the best on validation, and its rows sit beside the model's.
    const prior = result.textPrior!;
    expect(prior.curve.map((c) => [c.lastItems, c.weight])).toEqual([
      [0, 0],
      [2, 0.5],
      [2, 2],
    ]);
    expect(prior.valid.metrics['ndcg@10']).toBe(Math.max(...prior.curve.map((c) => c.value)));
    // Texts that predict the walks: the prior beats the model alone.
    expect(prior.weight).toBeGreaterThan(0);
    expect(prior.test.metrics['ndcg@10']).toBeGreaterThan(result.test.metrics['ndcg@10'] as number);
    const fused = await ch.query<{ split: string; metric: string; k: number; value: number; weight: number; pooling: string }>(
      `SELECT split, metric, k, value, text_prior_weight AS weight, text_prior_pooling AS pooling FROM ${ch.table('evaluation_results')} FINAL
       WHERE run_id = 'ch-run-1' AND text_prior_last = 2 ORDER BY split, metric, k`,
    );
    expect(fused.length).toBe(2 * Object.keys(prior.test.metrics).length);
    for (const row of fused) {
      expect(row.weight).toBe(prior.weight);
      expect(row.pooling).toBe('max');
      const expected = (row.split === 'test' ? prior.test : prior.valid).metrics[`${row.metric}@${row.k}`] as number;
      expect(row.value).toBeCloseTo(expected, 6);
    }
  }, 120_000);
});
