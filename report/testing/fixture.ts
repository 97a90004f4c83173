import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ArtifactStore } from '../../infra/artifacts';
import { BufferedWriter, IngestArchive, type ClickHouse } from '../../infra/clickhouse';
import { takeRows } from '../../infra/matrix';
import { microEpochRow } from '../../jobs/incremental';
import { semanticIdBuildRow } from '../../jobs/semanticIdRows';
import { buildSemanticIds, encodeNewItems, syntheticClusters } from '../../quantizer';
import { Random } from '../../random';
import type { DeadLetter } from '../../schemas/events';
import { ClickHouseTrainingObserver, TrainerConfig, evaluationRows } from '../../trainer';

/** What {@link fillReportTables} wrote, for checking what the report reads back. */
export interface ReportFixture {
  readonly runs: ReadonlyArray<{ runId: string; model: 'ccfrec' | 'sasrec'; epochs: number; test: Record<string, number>; testWithPrior?: Record<string, number> }>;
  readonly microEpochs: { readonly live: number; readonly refused: number; readonly experimentWindows: number };
  /** live_rebuilds rows: one refused, one published (version 8). */
  readonly rebuilds: number;
  readonly semanticIdBuilds: number;
  readonly interactions: number;
  readonly items: number;
  readonly deadLetters: Readonly<Record<string, number>>;
  readonly lagRows: number;
  readonly probes: Readonly<Record<string, number>>;
}

const MINUTE = 60_000;

/**
 * Fills every table the report reads with a small, seeded history, through the same row builders
 * the pipeline uses: two training runs (ClickHouseTrainingObserver), a live loop and an incremental
 * experiment (microEpochRow), a rebuild and new items coded with its codebooks (buildSemanticIds,
 * encodeNewItems, semanticIdBuildRow), archived events and dead letters (IngestArchive), lag checks
 * and freshness probes (the rows LagRows and the freshness benchmark write). `hostile` names go
 * into run ids and dataset names, to check that the page shows them as text.
 */
export async function fillReportTables(ch: ClickHouse, options: { readonly seed?: number; readonly hostile?: string } = {}): Promise<ReportFixture> {
  const rng = new Random(options.seed ?? 7);
  const now = Date.now();
  const start = now - 3 * 60 * MINUTE;
  const writer = new BufferedWriter({ sink: (table, rows) => ch.insert(table, rows), intervalMs: 50 });
  const hostile = options.hostile ?? '';

  // Training: two runs, epochs with loss parts and validation metrics, test metrics.
  const runs: Array<ReportFixture['runs'][number]> = [];
  for (const [i, model] of (['ccfrec', 'sasrec'] as const).entries()) {
    const runId = `run-${model}-${i}${hostile}`;
    const observer = new ClickHouseTrainingObserver(writer);
    const config = TrainerConfig.parse({ model: { type: model }, train: { epochs: 4, learningRate: i === 0 ? 0.001 : 0.003 } });
    const startedAt = new Date(start + i * 20 * MINUTE);
    observer.runStarted({ runId, model, config, dataset: `synthetic${hostile}`, protocol: 'leave-one-out', artifacts: {}, backend: 'tensorflow', backendReason: 'test', trainExamples: 5000 + i, startedAt });
    const epochs = 4;
    for (let e = 0; e < epochs; e++) {
      const endedAt = new Date(startedAt.getTime() + (e + 1) * MINUTE);
      const loss: Record<string, number> = model === 'ccfrec' ? { rec: 6 - e * 0.8 + rng.next() * 0.1, mlm: 3 - e * 0.3, cl: 1 + e * 0.05 } : { rec: 7 - e };
      observer.epochEnded({ runId, epoch: e, steps: 100, samples: 5000, loss, samplesPerSecond: 900 + e, durationSeconds: 5.5, learningRate: 0.001, skippedSteps: 0, endedAt });
      observer.evaluated(
        evaluationRows(
          { runId, modelVersion: `${runId}:epoch-${e}`, split: 'valid', usersEvaluated: 200, excludeHistory: false, epoch: e, evaluatedAt: endedAt },
          { 'ndcg@10': 0.05 + e * 0.01 + i * 0.005, 'recall@10': 0.1 + e * 0.02 + i * 0.01, 'ndcg@20': 0.06 + e * 0.01 },
        ),
      );
    }
    const test = { 'ndcg@10': 0.09 + i * 0.01, 'recall@10': 0.18 + i * 0.02 };
    const evaluatedAt = new Date(startedAt.getTime() + (epochs + 1) * MINUTE);
    observer.evaluated(evaluationRows({ runId, modelVersion: `checkpoint-${i}`, split: 'test', usersEvaluated: 200, excludeHistory: false, epoch: -1, evaluatedAt }, test));
    const testWithPrior = i === 0 ? { 'ndcg@10': 0.12, 'recall@10': 0.24 } : undefined;
    if (testWithPrior) {
      observer.evaluated(
        evaluationRows(
          { runId, modelVersion: `checkpoint-${i}`, split: 'test', usersEvaluated: 200, excludeHistory: false, epoch: -1, evaluatedAt, textPrior: { weight: 1, lastItems: 3, pooling: 'max' } },
          testWithPrior,
        ),
      );
    }
    observer.runEnded({ runId, status: 'completed', endedAt: evaluatedAt, epochs, bestEpoch: epochs - 1, bestValid: { 'ndcg@10': 0.08 }, checkpointId: `checkpoint-${i}` });
    runs.push({ runId, model, epochs, test, ...(testWithPrior ? { testWithPrior } : {}) });
  }

  // The live loop (method live, gate decisions, publications) and an incremental experiment.
  const live = 6;
  const refusedAt = new Set([2, 4]);
  for (let w = 0; w < live; w++) {
    const accepted = !refusedAt.has(w);
    const liveGate = 0.1 + w * 0.004;
    const micro = { trained: 300, replayed: 600, loss: 5 - w * 0.1, holdout: 50, liveGate, candidateGate: accepted ? liveGate + 0.003 : liveGate - 0.01, accepted };
    const row = {
      method: 'live' as const,
      window: w,
      windowStartMs: start + w * MINUTE,
      windowEndMs: start + (w + 1) * MINUTE,
      events: 400 + w,
      examples: 380,
      metrics: { 'ndcg@10': 0.1 + rng.next() * 0.02, 'recall@10': 0.2 + rng.next() * 0.03 },
      trainSeconds: 4 + rng.next(),
      steps: 20,
      trainSamples: 900,
      micro,
    };
    writer.write('micro_epochs', [microEpochRow(`live-run${hostile}`, { dataset: 'clickhouse:streamrec', model: 'ccfrec' }, row as never, { metric: 'ndcg@10', margin: 0.01 }, accepted ? { checkpointId: `checkpoint-live-${w}`, version: 2 + w } : {})]);
  }
  // Two full rebuilds of the live loop: one refused by the gate, one published.
  const rebuilds = [
    { id: 'rebuild-a', trigger: 'drift', decision: 'refused', live: 0.112, candidate: 0.101, version: null },
    { id: 'rebuild-b', trigger: 'schedule', decision: 'published', live: 0.114, candidate: 0.121, version: 8 },
  ];
  writer.write(
    'live_rebuilds',
    rebuilds.map((r, i) => ({
      run_id: `live-run${hostile}`, rebuild_id: r.id, trigger: r.trigger, reason: `${r.trigger} ${hostile}`, model: 'ccfrec', semantic_ids_id: `semantic_ids-${r.id}`,
      checkpoint_id: `checkpoint-${r.id}`, train_s: 40 + i, catch_up_events: 120 * (i + 1), gate_metric: 'ndcg@10', gate_windows: 2, gate_examples: 520,
      live_value: r.live, candidate_value: r.candidate, margin: 0, decision: r.decision, version: r.version, detail: `ndcg@10 ${r.candidate} vs live ${r.live}`,
      started_at: start + (2 + 2 * i) * MINUTE, decided_at: start + (3 + 2 * i) * MINUTE,
    })),
  );
  const windows = 5;
  for (const method of ['static', 'micro', 'retrain'] as const) {
    for (let w = 0; w < windows; w++) {
      const row = {
        method,
        window: w,
        windowStartMs: start + w * MINUTE,
        windowEndMs: start + (w + 1) * MINUTE,
        events: 1000,
        examples: 950,
        metrics: { 'ndcg@10': (method === 'static' ? 0.08 - w * 0.004 : 0.09) + rng.next() * 0.005, 'recall@10': 0.17 + rng.next() * 0.01 },
        trainSeconds: method === 'retrain' ? 60 : method === 'micro' ? 5 : 0,
        steps: method === 'static' ? 0 : 40,
        trainSamples: 0,
        ...(method === 'micro' ? { micro: { trained: 950, replayed: 1900, loss: 4.2, holdout: 0, liveGate: NaN, candidateGate: NaN, accepted: true } } : {}),
      };
      writer.write('micro_epochs', [microEpochRow('experiment-ml', { dataset: 'ml-100k', model: 'ccfrec' }, row as never, { metric: 'ndcg@10', margin: 0.01 })]);
    }
  }

  // Semantic IDs: a rebuild and new items coded with its codebooks, as artifacts, then their rows.
  const store = new ArtifactStore(mkdtempSync(path.join(tmpdir(), 'streamrec-report-artifacts-')));
  const all = syntheticClusters({ rows: 440, dims: 8, clusters: 6, clusterRank: 3, globalRank: 4 }, new Random(3)).matrix;
  const built = await buildSemanticIds({
    store,
    matrix: takeRows(all, Array.from({ length: 400 }, (_, i) => i)),
    settings: { method: 'rqkmeans', levels: 3, codesPerLevel: 16 },
    rng: new Random(11),
    inputs: [],
    job: 'report fixture',
  });
  const next = await encodeNewItems({ store, semanticIds: built.semanticIds, vectors: takeRows(all, Array.from({ length: 40 }, (_, i) => 400 + i)), inputs: [], job: 'report fixture' });
  writer.write('semantic_id_builds', [semanticIdBuildRow(built.semanticIds, 'rebuild', built.trainSeconds), semanticIdBuildRow(next.semanticIds, 'new_items')]);

  // Ingest: archived events and dead letters (ingested now: the last minutes).
  await writer.close();
  const archive = new IngestArchive(ch);
  const interactions = 300;
  const items = 40;
  await archive.insertInteractions(
    Array.from({ length: interactions }, (_, i) => ({
      event_id: `e${i}`,
      user_id: `u${i % 30}`,
      item_id: `i${i % items}`,
      type: 'click',
      value: null,
      ts: start + i * 1000,
      session_index: 0,
      source: 'test',
      context: '{}',
      topic: 'interactions',
      partition: i % 4,
      offset: i,
      // Spread over the last 40 minutes: several per-minute buckets.
      ingested_at: now - 40 * MINUTE + i * 8000,
    })),
  );
  await archive.insertItems(
    Array.from({ length: items }, (_, i) => ({
      item_id: `i${i}`,
      ts: start,
      title: `Item ${i}`,
      brand: '',
      categories: [],
      description: '',
      features: [],
      meta: '{}',
      topic: 'catalog',
      partition: 0,
      offset: i,
      ingested_at: now - 45 * MINUTE,
    })),
  );
  const deadLetters: Record<string, number> = { invalid_json: 3, schema: 5, too_large: 1 };
  let offset = 0;
  const letters: DeadLetter[] = Object.entries(deadLetters).flatMap(([code, n]) =>
    Array.from({ length: n }, () => {
      const payload = Buffer.from(`bad ${code}${hostile}`);
      return {
        payload: payload.toString('base64'),
        payloadBytes: payload.length,
        origin: { topic: 'interactions', partition: 1, offset: String(offset++), key: null },
        error: { code: code as DeadLetter['error']['code'], message: `${code}${hostile}`, path: null },
        failedAt: now - offset * MINUTE,
      };
    }),
  );
  await archive.insertDeadLetters(letters);

  // Lag checks every 5 s over 10 minutes for 2 topics x 2 partitions, and freshness probes of two benchmark runs.
  const lagRows = [];
  for (let t = now - 10 * MINUTE; t < now; t += 5000) {
    for (const topic of ['interactions', 'catalog']) {
      for (let partition = 0; partition < 2; partition++) lagRows.push({ topic, partition, lag: Math.round(rng.next() * 500), group_id: 'streamrec-ingest', measured_at: t });
    }
  }
  await ch.insert('ingest_lag', lagRows);
  const probes: Record<string, number> = { history: 80, changelog_history: 80, model: 12, new_item: 6 };
  const probeRows = [];
  for (const benchId of ['freshness-a', 'freshness-b']) {
    for (const [kind, n] of Object.entries(probes)) {
      for (let p = 0; p < n / 2; p++) {
        const ms = kind === 'model' ? 20_000 + rng.next() * 10_000 : kind === 'new_item' ? 8_000 + rng.next() * 4_000 : 5 + rng.next() * 40;
        probeRows.push({ bench_id: benchId, kind, latency_ms: ms, measured_at: now - 5 * MINUTE + p * 250 });
      }
    }
  }
  await ch.insert('freshness_probes', probeRows);
  return {
    runs,
    microEpochs: { live, refused: refusedAt.size, experimentWindows: windows },
    rebuilds: rebuilds.length,
    semanticIdBuilds: 2,
    interactions,
    items,
    deadLetters,
    lagRows: lagRows.length,
    probes,
  };
}
