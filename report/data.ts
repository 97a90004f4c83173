import type { ClickHouse } from '../infra/clickhouse';

/**
 * What the report draws, read from the ClickHouse tables (infra/clickhouse/migrations): plain
 * numbers and strings, times as epoch milliseconds. Each section is empty when nothing was recorded.
 */
export interface ReportData {
  readonly generatedAt: number;
  /** Where the rows came from: the ClickHouse URL and database. */
  readonly source: string;
  readonly version: string;
  /** The runs the report was limited to (`--run`); empty: all. */
  readonly runs: readonly string[];
  readonly training: TrainingSection;
  readonly live: LiveSection;
  readonly semanticIds: SemanticIdSection;
  readonly ingest: IngestSection;
  readonly freshness: FreshnessSection;
}

export interface TrainingRun {
  readonly runId: string;
  readonly model: string;
  readonly dataset: string;
  readonly protocol: string;
  readonly status: string;
  readonly backend: string;
  readonly startedAt: number;
  readonly endedAt: number | null;
  readonly epochs: number;
  readonly bestEpoch: number;
  readonly trainExamples: number;
  readonly checkpointId: string;
  /** The run's settings that vary most between runs (from its config JSON). */
  readonly settings: Record<string, string | number | boolean>;
  /** Test metrics of the model alone (`ndcg@10`, `recall@10`), latest evaluation. */
  readonly test: Record<string, number>;
  /** Test metrics with the checkpoint's text prior, when it was evaluated with one. */
  readonly testWithPrior: Record<string, number>;
}

export interface TrainingSection {
  readonly runs: readonly TrainingRun[];
  readonly epochs: ReadonlyArray<{ runId: string; epoch: number; loss: number; parts: Record<string, number>; samplesPerS: number; durationS: number }>;
  /** Validation metrics after each epoch (model alone, k = 10). */
  readonly valid: ReadonlyArray<{ runId: string; epoch: number; metric: string; value: number }>;
}

export interface MicroEpochPoint {
  readonly runId: string;
  readonly method: string;
  readonly microEpoch: number;
  readonly dataset: string;
  readonly model: string;
  readonly windowEnd: number;
  readonly events: number;
  readonly prequential: Record<string, number>;
  readonly trainS: number;
  /** Users of the held-out slice the gate compared on (0: no gate decision was made). */
  readonly holdout: number;
  readonly gateMetric: string;
  readonly liveGate: number;
  readonly candidateGate: number;
  readonly accepted: boolean;
  readonly publishedVersion: number;
  readonly endedAt: number;
}

/** A full rebuild of the live loop (`live_rebuilds`): why, the candidate, the gate and the decision. */
export interface LiveRebuild {
  readonly runId: string;
  readonly rebuildId: string;
  readonly trigger: string;
  readonly reason: string;
  readonly model: string;
  readonly semanticIdsId: string;
  readonly checkpointId: string;
  readonly trainS: number;
  readonly catchUpEvents: number;
  readonly gateMetric: string;
  readonly gateExamples: number;
  readonly liveValue: number | null;
  readonly candidateValue: number | null;
  readonly margin: number;
  readonly decision: string;
  readonly version: number | null;
  readonly detail: string;
  readonly startedAt: number;
  readonly decidedAt: number;
}

export interface LiveSection {
  readonly microEpochs: readonly MicroEpochPoint[];
  readonly rebuilds: readonly LiveRebuild[];
}

export interface SemanticIdBuildPoint {
  readonly id: string;
  readonly kind: string;
  readonly method: string;
  readonly items: number;
  readonly newItems: number;
  readonly levels: number;
  readonly codesPerLevel: number;
  readonly fractionUsed: readonly number[];
  readonly perplexity: readonly number[];
  readonly collisionRate: number;
  readonly relMse: number | null;
  readonly newItemsRelMse: number | null;
  readonly builtAt: number;
}

export interface SemanticIdSection {
  readonly builds: readonly SemanticIdBuildPoint[];
}

export interface IngestSection {
  /** Bucket width of the series below, in seconds (an hour, or a minute when everything lies within 6 hours). */
  readonly bucketS: number;
  /** Archived events per bucket of `ingested_at`, by stream (interactions, catalog). */
  readonly events: ReadonlyArray<{ t: number; stream: string; n: number }>;
  /** Dead letters per bucket of `failed_at`, by code. */
  readonly deadLetters: ReadonlyArray<{ t: number; code: string; n: number }>;
  /** Largest partition lag per lag-check bucket, by topic (when ingest recorded it). */
  readonly lag: ReadonlyArray<{ t: number; topic: string; lag: number }>;
  readonly totals: { readonly interactions: number; readonly items: number; readonly deadLetters: number };
}

export interface FreshnessSection {
  /** Latencies per benchmark run and kind (history and changelog_history in ms, model and new_item in ms too). */
  readonly probes: ReadonlyArray<{ benchId: string; kind: string; latencyMs: number; measuredAt: number }>;
}

export interface ReadReportOptions {
  /** Limit training and live-loop sections to these run ids (empty or absent: all runs). */
  readonly runs?: readonly string[];
  readonly version: string;
}

/** The metrics the report charts (k = 10). */
const METRICS = ['ndcg', 'recall'] as const;
/** Most probes read per freshness kind and benchmark run. */
const PROBE_LIMIT = 20_000;

/** Reads every section of the report from `ch`. */
export async function readReportData(ch: ClickHouse, options: ReadReportOptions): Promise<ReportData> {
  const runs = [...new Set(options.runs ?? [])];
  const [training, live, semanticIds, ingest, freshness] = [
    await readTraining(ch, runs),
    await readLive(ch, runs),
    await readSemanticIds(ch),
    await readIngest(ch),
    await readFreshness(ch),
  ];
  return { generatedAt: Date.now(), source: `${ch.url} (database ${ch.database})`, version: options.version, runs, training, live, semanticIds, ingest, freshness };
}

/** A Nullable number as JSON gives it (numbers may come as strings), or null. */
function orNull(v: string | number | null | undefined): number | null {
  return v === null || v === undefined ? null : Number(v);
}

/** A ClickHouse Map(String, Float64) as JSON gives it, with numbers as numbers. */
function numbers(map: Record<string, number | string>): Record<string, number> {
  return Object.fromEntries(Object.entries(map).map(([k, v]) => [k, Number(v)]));
}

/** `AND run_id IN (...)` when runs are given, as a query parameter. */
function runFilter(runs: readonly string[]): { sql: string; params: Record<string, unknown> } {
  return runs.length > 0 ? { sql: 'AND run_id IN {runs:Array(String)}', params: { runs } } : { sql: '', params: {} };
}

/** The settings worth a column: model size and training knobs, flattened from the run's config JSON. */
function runSettings(config: string): Record<string, string | number | boolean> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(config);
  } catch {
    return {};
  }
  const out: Record<string, string | number | boolean> = {};
  const visit = (value: unknown, prefix: string, depth: number): void => {
    if (value === null || value === undefined) return;
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') {
      out[prefix] = value;
      return;
    }
    if (typeof value === 'object' && !Array.isArray(value) && depth < 3) {
      for (const [k, v] of Object.entries(value)) visit(v, prefix ? `${prefix}.${k}` : k, depth + 1);
    }
  };
  visit(parsed, '', 0);
  return out;
}

async function readTraining(ch: ClickHouse, runs: readonly string[]): Promise<TrainingSection> {
  const filter = runFilter(runs);
  const runRows = await ch.query<{
    run_id: string;
    model: string;
    dataset: string;
    protocol: string;
    status: string;
    backend: string;
    started_ms: string;
    ended_ms: string | null;
    epochs: number;
    best_epoch: number;
    train_examples: string;
    checkpoint_id: string;
    config: string;
  }>(
    `SELECT run_id, model, dataset, protocol, status, backend, toUnixTimestamp64Milli(started_at) AS started_ms,
            toUnixTimestamp64Milli(ended_at) AS ended_ms, epochs, best_epoch, train_examples, checkpoint_id, config
     FROM ${ch.table('training_runs')} FINAL WHERE 1 ${filter.sql} ORDER BY started_at, run_id`,
    filter.params,
  );
  const tests = await ch.query<{ run_id: string; metric: string; prior: number; value: number }>(
    `SELECT run_id, metric, text_prior_weight > 0 AS prior, argMax(value, evaluated_at) AS value
     FROM ${ch.table('evaluation_results')} FINAL
     WHERE split = 'test' AND k = 10 AND metric IN {metrics:Array(String)} ${filter.sql}
     GROUP BY run_id, metric, prior`,
    { ...filter.params, metrics: METRICS },
  );
  const epochRows = await ch.query<{ run_id: string; epoch: number; loss: number; loss_parts: Record<string, number>; samples_per_s: number; duration_s: number }>(
    `SELECT run_id, epoch, loss, loss_parts, samples_per_s, duration_s FROM ${ch.table('training_epochs')} FINAL WHERE 1 ${filter.sql} ORDER BY run_id, epoch`,
    filter.params,
  );
  const validRows = await ch.query<{ run_id: string; epoch: number; metric: string; value: number }>(
    `SELECT run_id, epoch, metric, argMax(value, evaluated_at) AS value FROM ${ch.table('evaluation_results')} FINAL
     WHERE split = 'valid' AND epoch >= 0 AND k = 10 AND text_prior_weight = 0 AND metric IN {metrics:Array(String)} ${filter.sql}
     GROUP BY run_id, epoch, metric ORDER BY run_id, epoch`,
    { ...filter.params, metrics: METRICS },
  );
  const testOf = (runId: string, prior: boolean): Record<string, number> =>
    Object.fromEntries(tests.filter((t) => t.run_id === runId && Boolean(Number(t.prior)) === prior).map((t) => [`${t.metric}@10`, Number(t.value)]));
  return {
    runs: runRows.map((r) => ({
      runId: r.run_id,
      model: r.model,
      dataset: r.dataset,
      protocol: r.protocol,
      status: r.status,
      backend: r.backend,
      startedAt: Number(r.started_ms),
      endedAt: orNull(r.ended_ms),
      epochs: Number(r.epochs),
      bestEpoch: Number(r.best_epoch),
      trainExamples: Number(r.train_examples),
      checkpointId: r.checkpoint_id,
      settings: runSettings(r.config),
      test: testOf(r.run_id, false),
      testWithPrior: testOf(r.run_id, true),
    })),
    epochs: epochRows.map((e) => ({
      runId: e.run_id,
      epoch: Number(e.epoch),
      loss: Number(e.loss),
      parts: numbers(e.loss_parts),
      samplesPerS: Number(e.samples_per_s),
      durationS: Number(e.duration_s),
    })),
    valid: validRows.map((v) => ({ runId: v.run_id, epoch: Number(v.epoch), metric: `${v.metric}@10`, value: Number(v.value) })),
  };
}

async function readLive(ch: ClickHouse, runs: readonly string[]): Promise<LiveSection> {
  const filter = runFilter(runs);
  const rows = await ch.query<{
    run_id: string;
    method: string;
    micro_epoch: number;
    dataset: string;
    model: string;
    window_end_ms: string;
    events: number;
    prequential: Record<string, number>;
    train_s: number;
    holdout: number;
    gate_metric: string;
    live_gate: number;
    candidate_gate: number;
    accepted: number;
    published_version: string;
    ended_ms: string;
  }>(
    `SELECT run_id, method, micro_epoch, dataset, model, toUnixTimestamp64Milli(window_end) AS window_end_ms, events, prequential, train_s, holdout,
            gate_metric, live_gate, candidate_gate, accepted, published_version, toUnixTimestamp64Milli(ended_at) AS ended_ms
     FROM ${ch.table('micro_epochs')} FINAL WHERE 1 ${filter.sql} ORDER BY run_id, method, micro_epoch`,
    filter.params,
  );
  const rebuilds = await ch.query<Record<string, string | number | null>>(
    `SELECT run_id, rebuild_id, trigger, reason, model, semantic_ids_id, checkpoint_id, train_s, catch_up_events, gate_metric, gate_examples,
            live_value, candidate_value, margin, decision, version, detail,
            toUnixTimestamp64Milli(started_at) AS started_ms, toUnixTimestamp64Milli(decided_at) AS decided_ms
     FROM ${ch.table('live_rebuilds')} FINAL WHERE 1 ${filter.sql} ORDER BY started_at, rebuild_id`,
    filter.params,
  );
  return {
    rebuilds: rebuilds.map((r) => ({
      runId: String(r.run_id),
      rebuildId: String(r.rebuild_id),
      trigger: String(r.trigger),
      reason: String(r.reason),
      model: String(r.model),
      semanticIdsId: String(r.semantic_ids_id),
      checkpointId: String(r.checkpoint_id),
      trainS: Number(r.train_s),
      catchUpEvents: Number(r.catch_up_events),
      gateMetric: String(r.gate_metric),
      gateExamples: Number(r.gate_examples),
      liveValue: orNull(r.live_value),
      candidateValue: orNull(r.candidate_value),
      margin: Number(r.margin),
      decision: String(r.decision),
      version: orNull(r.version),
      detail: String(r.detail),
      startedAt: Number(r.started_ms),
      decidedAt: Number(r.decided_ms),
    })),
    microEpochs: rows.map((r) => ({
      runId: r.run_id,
      method: r.method,
      microEpoch: Number(r.micro_epoch),
      dataset: r.dataset,
      model: r.model,
      windowEnd: Number(r.window_end_ms),
      events: Number(r.events),
      prequential: numbers(r.prequential),
      trainS: Number(r.train_s),
      holdout: Number(r.holdout),
      gateMetric: r.gate_metric,
      liveGate: Number(r.live_gate),
      candidateGate: Number(r.candidate_gate),
      accepted: Number(r.accepted) === 1,
      publishedVersion: Number(r.published_version),
      endedAt: Number(r.ended_ms),
    })),
  };
}

async function readSemanticIds(ch: ClickHouse): Promise<SemanticIdSection> {
  const rows = await ch.query<{
    semantic_ids_id: string;
    kind: string;
    method: string;
    items: number;
    new_items: number;
    levels: number;
    codes_per_level: number;
    fraction_used: number[];
    perplexity: number[];
    collision_rate: number;
    rel_mse: number | null;
    new_items_rel_mse: number | null;
    built_ms: string;
  }>(
    `SELECT semantic_ids_id, kind, method, items, new_items, levels, codes_per_level, fraction_used, perplexity, collision_rate, rel_mse,
            new_items_rel_mse, toUnixTimestamp64Milli(built_at) AS built_ms
     FROM ${ch.table('semantic_id_builds')} FINAL ORDER BY built_at, semantic_ids_id`,
  );
  return {
    builds: rows.map((r) => ({
      id: r.semantic_ids_id,
      kind: r.kind,
      method: r.method,
      items: Number(r.items),
      newItems: Number(r.new_items),
      levels: Number(r.levels),
      codesPerLevel: Number(r.codes_per_level),
      fractionUsed: r.fraction_used.map(Number),
      perplexity: r.perplexity.map(Number),
      collisionRate: Number(r.collision_rate),
      relMse: orNull(r.rel_mse),
      newItemsRelMse: orNull(r.new_items_rel_mse),
      builtAt: Number(r.built_ms),
    })),
  };
}

const HOUR_S = 3600;

async function readIngest(ch: ClickHouse): Promise<IngestSection> {
  const spans = await ch.query<{ first: string | null; last: string | null }>(
    `SELECT min(lo) AS first, max(hi) AS last FROM (
       SELECT toUnixTimestamp64Milli(min(ingested_at)) AS lo, toUnixTimestamp64Milli(max(ingested_at)) AS hi FROM ${ch.table('interactions')}
       UNION ALL SELECT toUnixTimestamp64Milli(min(ingested_at)), toUnixTimestamp64Milli(max(ingested_at)) FROM ${ch.table('items')}
       UNION ALL SELECT toUnixTimestamp64Milli(min(failed_at)), toUnixTimestamp64Milli(max(failed_at)) FROM ${ch.table('dead_letters')}
       UNION ALL SELECT toUnixTimestamp64Milli(min(measured_at)), toUnixTimestamp64Milli(max(measured_at)) FROM ${ch.table('ingest_lag')}
     ) WHERE lo > 0`,
  );
  const span = spans[0] && spans[0].first !== null && spans[0].last !== null ? Number(spans[0].last) - Number(spans[0].first) : 0;
  const bucketS = span > 0 && span <= 6 * HOUR_S * 1000 ? 60 : HOUR_S;
  const bucket = (column: string): string => `toUnixTimestamp(toStartOfInterval(${column}, INTERVAL ${bucketS} SECOND)) * 1000`;
  const events = await ch.query<{ t: string; stream: string; n: string }>(
    `SELECT ${bucket('ingested_at')} AS t, 'interactions' AS stream, count() AS n FROM ${ch.table('interactions')} FINAL GROUP BY t
     UNION ALL SELECT ${bucket('ingested_at')} AS t, 'catalog' AS stream, count() AS n FROM ${ch.table('items')} FINAL GROUP BY t
     ORDER BY t`,
  );
  const deadLetters = await ch.query<{ t: string; code: string; n: string }>(
    `SELECT ${bucket('failed_at')} AS t, code, count() AS n FROM ${ch.table('dead_letters')} FINAL GROUP BY t, code ORDER BY t, code`,
  );
  // Lag at the resolution it was measured while that stays under ~2,000 points per topic.
  const lagSpan = await ch.query<{ s: string }>(
    `SELECT toUnixTimestamp64Milli(max(measured_at)) - toUnixTimestamp64Milli(min(measured_at)) AS s FROM ${ch.table('ingest_lag')}`,
  );
  const lagBucketS = Math.max(1, Math.ceil(Number(lagSpan[0]?.s ?? 0) / 1000 / 2000));
  const lag = await ch.query<{ t: string; topic: string; lag: string }>(
    `SELECT toUnixTimestamp(toStartOfInterval(measured_at, INTERVAL ${lagBucketS} SECOND)) * 1000 AS t, topic, max(lag) AS lag
     FROM ${ch.table('ingest_lag')} GROUP BY t, topic ORDER BY t, topic`,
  );
  const sum = (rows: ReadonlyArray<{ n: string }>): number => rows.reduce((s, r) => s + Number(r.n), 0);
  const eventRows = events.map((e) => ({ t: Number(e.t), stream: e.stream, n: Number(e.n) }));
  return {
    bucketS,
    events: eventRows,
    deadLetters: deadLetters.map((d) => ({ t: Number(d.t), code: d.code, n: Number(d.n) })),
    lag: lag.map((l) => ({ t: Number(l.t), topic: l.topic, lag: Number(l.lag) })),
    totals: {
      interactions: sum(events.filter((e) => e.stream === 'interactions')),
      items: sum(events.filter((e) => e.stream === 'catalog')),
      deadLetters: sum(deadLetters),
    },
  };
}

async function readFreshness(ch: ClickHouse): Promise<FreshnessSection> {
  const rows = await ch.query<{ bench_id: string; kind: string; latency_ms: number; measured_ms: string }>(
    `SELECT bench_id, kind, latency_ms, toUnixTimestamp64Milli(measured_at) AS measured_ms FROM ${ch.table('freshness_probes')}
     ORDER BY bench_id, kind, measured_at LIMIT ${PROBE_LIMIT} BY bench_id, kind`,
  );
  return { probes: rows.map((r) => ({ benchId: r.bench_id, kind: r.kind, latencyMs: Number(r.latency_ms), measuredAt: Number(r.measured_ms) })) };
}
