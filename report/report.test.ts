import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openClickHouse, type ClickHouse } from '../infra/clickhouse';
import { ClickHouseConfig } from '../schemas/config';
import { readReportData, renderReport, scriptSafeJson, SECTIONS } from './index';
import { fillReportTables, type ReportFixture } from './testing/fixture';

const HOSTILE = '</script><script>window.pwned=1</script><!--';

describe('the report reads every section from the ClickHouse tables', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'streamrec-report-'));
  let ch: ClickHouse;
  let fixture: ReportFixture;
  beforeAll(async () => {
    ch = await openClickHouse(ClickHouseConfig.parse({ url: `chdb:${dir}` }));
    fixture = await fillReportTables(ch, { hostile: HOSTILE });
  }, 60_000);
  afterAll(async () => {
    await ch.close();
  });

  it('training: each run with its test metrics (alone and with the prior), every epoch, validation at k = 10 per epoch, the settings that differ', async () => {
    const data = await readReportData(ch, { version: 'test' });
    expect(data.training.runs.map((r) => r.runId)).toEqual(fixture.runs.map((r) => r.runId));
    for (const [i, run] of data.training.runs.entries()) {
      const expected = fixture.runs[i]!;
      expect(run).toMatchObject({ model: expected.model, status: 'completed', epochs: expected.epochs, bestEpoch: expected.epochs - 1, dataset: `synthetic${HOSTILE}` });
      for (const [m, v] of Object.entries(expected.test)) expect(run.test[m]).toBeCloseTo(v, 9);
      expect(Object.keys(run.testWithPrior).length).toBe(expected.testWithPrior ? 2 : 0);
      for (const [m, v] of Object.entries(expected.testWithPrior ?? {})) expect(run.testWithPrior[m]).toBeCloseTo(v, 9);
    }
    // The learning rate differs between the two runs' configs, and the table can show it.
    expect(data.training.runs[0]!.settings['train.learningRate']).toBe(0.001);
    expect(data.training.runs[1]!.settings['train.learningRate']).toBe(0.003);
    expect(data.training.epochs).toHaveLength(8);
    expect(data.training.epochs[0]!.parts).toEqual({ rec: expect.any(Number), mlm: 3, cl: 1 });
    // ndcg@20 is recorded but only k = 10 is charted.
    expect(data.training.valid).toHaveLength(2 * 4 * 2);
    expect(new Set(data.training.valid.map((v) => v.metric))).toEqual(new Set(['ndcg@10', 'recall@10']));
    const first = data.training.valid.find((v) => v.runId === fixture.runs[0]!.runId && v.epoch === 3 && v.metric === 'ndcg@10');
    expect(first?.value).toBeCloseTo(0.05 + 3 * 0.01, 9);
  });

  it('the live loop, semantic-ID builds, ingest counts by bucket and code, lag, and freshness probes', async () => {
    const data = await readReportData(ch, { version: 'test' });
    const live = data.live.microEpochs.filter((m) => m.method === 'live');
    expect(live).toHaveLength(fixture.microEpochs.live);
    expect(live.filter((m) => !m.accepted)).toHaveLength(fixture.microEpochs.refused);
    expect(live.filter((m) => m.accepted).map((m) => m.publishedVersion)).toEqual([2, 3, 5, 7]);
    expect(live.every((m) => m.gateMetric === 'ndcg@10' && m.prequential['ndcg@10']! > 0)).toBe(true);
    for (const method of ['static', 'micro', 'retrain']) expect(data.live.microEpochs.filter((m) => m.method === method)).toHaveLength(fixture.microEpochs.experimentWindows);
    expect(data.live.rebuilds.map((r) => [r.trigger, r.decision, r.version, r.catchUpEvents, r.gateExamples])).toEqual([
      ['drift', 'refused', null, 120, 520],
      ['schedule', 'published', 8, 240, 520],
    ]);
    expect(data.live.rebuilds).toHaveLength(fixture.rebuilds);

    const [rebuild, newItems] = data.semanticIds.builds;
    expect(data.semanticIds.builds).toHaveLength(fixture.semanticIdBuilds);
    expect(rebuild).toMatchObject({ kind: 'rebuild', method: 'rqkmeans', items: 400, newItems: 0, levels: 3, codesPerLevel: 16, newItemsRelMse: null });
    expect(rebuild!.relMse).toBeGreaterThan(0);
    expect(rebuild!.fractionUsed).toHaveLength(3);
    expect(rebuild!.fractionUsed.every((f) => f > 0 && f <= 1)).toBe(true);
    expect(newItems).toMatchObject({ kind: 'new_items', items: 440, newItems: 40 });
    expect(newItems!.newItemsRelMse).toBeGreaterThan(0);

    // Everything lies within 6 hours: per-minute buckets that add up to the totals.
    expect(data.ingest.bucketS).toBe(60);
    expect(data.ingest.totals).toEqual({ interactions: fixture.interactions, items: fixture.items, deadLetters: Object.values(fixture.deadLetters).reduce((a, b) => a + b, 0) });
    expect(new Set(data.ingest.events.filter((e) => e.stream === 'interactions').map((e) => e.t)).size).toBeGreaterThan(10);
    for (const [code, n] of Object.entries(fixture.deadLetters)) {
      expect(data.ingest.deadLetters.filter((d) => d.code === code).reduce((s, d) => s + d.n, 0)).toBe(n);
    }
    expect(data.ingest.events.every((e) => e.t % 60_000 === 0)).toBe(true);
    expect(new Set(data.ingest.lag.map((l) => l.topic))).toEqual(new Set(['interactions', 'catalog']));
    expect(data.ingest.lag.length).toBeGreaterThan(50);
    expect(data.ingest.lag.every((l) => l.lag >= 0 && l.lag <= 500)).toBe(true);

    const kinds = Object.fromEntries(Object.keys(fixture.probes).map((k) => [k, data.freshness.probes.filter((p) => p.kind === k).length]));
    expect(kinds).toEqual(fixture.probes);
    expect(new Set(data.freshness.probes.map((p) => p.benchId))).toEqual(new Set(['freshness-a', 'freshness-b']));
  });

  it('--run limits the training and live-loop sections to the runs named; other sections stay whole', async () => {
    const only = fixture.runs[1]!.runId;
    const data = await readReportData(ch, { version: 'test', runs: [only, 'experiment-ml'] });
    expect(data.runs).toEqual([only, 'experiment-ml']);
    expect(data.training.runs.map((r) => r.runId)).toEqual([only]);
    expect(new Set(data.training.epochs.map((e) => e.runId))).toEqual(new Set([only]));
    expect(new Set(data.live.microEpochs.map((m) => m.runId))).toEqual(new Set(['experiment-ml']));
    expect(data.live.rebuilds).toEqual([]);
    expect(data.semanticIds.builds).toHaveLength(2);
  });

  it('a database with nothing recorded gives empty sections, not errors', async () => {
    const empty = await openClickHouse(ClickHouseConfig.parse({ url: `chdb:${dir}`, database: 'nothing_yet' }));
    try {
      const data = await readReportData(empty, { version: 'test' });
      expect(data.training).toEqual({ runs: [], epochs: [], valid: [] });
      expect(data.live.microEpochs).toEqual([]);
      expect(data.live.rebuilds).toEqual([]);
      expect(data.semanticIds.builds).toEqual([]);
      expect(data.ingest).toMatchObject({ events: [], deadLetters: [], lag: [], totals: { interactions: 0, items: 0, deadLetters: 0 } });
      expect(data.freshness.probes).toEqual([]);
      const html = renderReport(data);
      for (const s of SECTIONS) expect(html).toContain(`<section id="${s.id}">`);
    } finally {
      await empty.close();
    }
  });

  it('the page carries the data as JSON that no table text can break out of, with echarts and its script inlined', async () => {
    const data = await readReportData(ch, { version: 'test' });
    const html = renderReport(data);
    expect(html).not.toContain(HOSTILE);
    expect(html).not.toContain('<script>window.pwned');
    const json = /<script type="application\/json" id="report-data">([\s\S]*?)<\/script>/.exec(html)?.[1];
    expect(json).toBeDefined();
    expect(JSON.parse(json as string)).toEqual(JSON.parse(JSON.stringify(data)));
    // Scripts inline, nothing fetched: no src or href to another place.
    expect(html).not.toMatch(/<script[^>]+src=/);
    expect(html).not.toMatch(/<link[^>]+href=/);
    expect(html).toContain('echarts');
    expect(scriptSafeJson({ a: '</script>&\u2028' })).toBe('{"a":"\\u003c/script\\u003e\\u0026\\u2028"}');
  });
});
