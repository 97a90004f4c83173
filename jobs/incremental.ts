import { randomBytes } from 'node:crypto';
import type { z } from 'zod';
import { initTf } from '../infra/tf';
import type { BufferedWriter } from '../infra/clickhouse';
import {
  INCREMENTAL_METHODS,
  runIncrementalExperiment,
  type IncrementalExperimentResult,
  type IncrementalMethod,
  type IncrementalWindowRow,
  MicroEpochConfig,
  type TrainerConfig,
} from '../trainer';
import type { AppConfig } from './config';
import { loadSource, type DataSource } from './data';
import { openTrainingSink } from './sink';
import { sideInfoFor } from './train';
import { ArtifactStore } from '../infra/artifacts';

export interface IncrementalJobOptions {
  readonly config: AppConfig;
  /** The model and how the first model and each retrain are trained (`streamrec train`'s flags). */
  readonly trainer: TrainerConfig;
  readonly source: DataSource;
  readonly micro?: z.input<typeof MicroEpochConfig>;
  readonly windows?: number;
  readonly trainFraction?: number;
  readonly methods?: readonly IncrementalMethod[];
  /** What each retrain trains on (runIncrementalExperiment's `retrainOn`). */
  readonly retrainOn?: 'split' | 'all';
  /** Write one `micro_epochs` row per method and window to ClickHouse. */
  readonly writeRows: boolean;
  readonly onWindow?: (row: IncrementalWindowRow) => void;
  readonly runId?: string;
  readonly signal?: AbortSignal;
}

/** The experiment's answer, as `npm run bench -- incremental` prints it. */
export interface IncrementalSummary {
  readonly dataset: string;
  readonly model: string;
  readonly windows: number;
  readonly stream_events: number;
  readonly static?: { readonly 'ndcg@10': number; readonly 'recall@10': number };
  readonly micro?: { readonly 'ndcg@10': number; readonly 'recall@10': number; readonly train_s: number; readonly train_samples: number };
  readonly retrain?: { readonly 'ndcg@10': number; readonly 'recall@10': number; readonly train_s: number; readonly train_samples: number };
  /** micro NDCG@10 / retrain NDCG@10 (goal: >= 0.98). */
  readonly micro_vs_retrain_ndcg: number | null;
  /** micro training seconds / retrain training seconds (goal: <= 0.1). */
  readonly micro_compute_share: number | null;
  /** micro / retrain examples trained through: the same share measured without the machine's load. */
  readonly micro_sample_share: number | null;
  /** micro NDCG@10 / static NDCG@10 (goal: > 1). */
  readonly micro_vs_static_ndcg: number | null;
}

const round = (v: number, places = 4): number => Math.round(v * 10 ** places) / 10 ** places;

export function summarizeIncremental(result: IncrementalExperimentResult): IncrementalSummary {
  const m = result.methods;
  const metrics = (method: IncrementalMethod) => {
    const s = m[method];
    return s ? { 'ndcg@10': round(s.metrics['ndcg@10'] ?? Number.NaN), 'recall@10': round(s.metrics['recall@10'] ?? Number.NaN) } : undefined;
  };
  const ratio = (a: number | undefined, b: number | undefined): number | undefined => (a !== undefined && b !== undefined && b > 0 ? round(a / b) : undefined);
  const ndcg = (method: IncrementalMethod): number | undefined => m[method]?.metrics['ndcg@10'];
  const fixed = metrics('static');
  const micro = metrics('micro');
  const retrain = metrics('retrain');
  const share = ratio(m.micro?.trainSeconds, m.retrain?.trainSeconds);
  const sampleShare = ratio(m.micro?.trainSamples, m.retrain?.trainSamples);
  const vsRetrain = ratio(ndcg('micro'), ndcg('retrain'));
  const vsStatic = ratio(ndcg('micro'), ndcg('static'));
  return {
    dataset: result.dataset,
    model: result.model,
    windows: result.windows,
    stream_events: result.streamEvents,
    ...(fixed ? { static: fixed } : {}),
    ...(micro ? { micro: { ...micro, train_s: round(m.micro?.trainSeconds ?? 0, 1), train_samples: m.micro?.trainSamples ?? 0 } } : {}),
    ...(retrain ? { retrain: { ...retrain, train_s: round(m.retrain?.trainSeconds ?? 0, 1), train_samples: m.retrain?.trainSamples ?? 0 } } : {}),
    // The ratios are always there (null: a method they need was not run, or its denominator is 0).
    micro_vs_retrain_ndcg: vsRetrain ?? null,
    micro_compute_share: share ?? null,
    micro_sample_share: sampleShare ?? null,
    micro_vs_static_ndcg: vsStatic ?? null,
  };
}

/** What a `micro_epochs` row is made of: a window of the experiment, a live micro-epoch (method `live`), or a rebuilt candidate's beside it (`rebuild`). */
export type MicroEpochRowInput = Omit<IncrementalWindowRow, 'method'> & { readonly method: IncrementalWindowRow['method'] | 'live' | 'rebuild' };

/** One `micro_epochs` row (infra/clickhouse/migrations/005_micro_epochs.ts). */
export function microEpochRow(
  runId: string,
  result: { dataset: string; model: string },
  row: MicroEpochRowInput,
  gate: { readonly metric: string; readonly margin: number },
  publication?: { readonly checkpointId?: string | undefined; readonly version?: number | undefined },
): object {
  const micro = row.micro;
  return {
    run_id: runId,
    method: row.method,
    micro_epoch: row.window,
    dataset: result.dataset,
    model: result.model,
    window_start: row.windowStartMs,
    window_end: row.windowEndMs,
    watermark: row.watermark,
    events: row.events,
    examples: row.examples,
    prequential: row.metrics,
    trained: micro?.trained ?? 0,
    replayed: micro?.replayed ?? 0,
    steps: row.steps,
    loss: micro && Number.isFinite(micro.loss) ? micro.loss : 0,
    train_s: row.trainSeconds,
    holdout: micro?.holdout ?? 0,
    gate_metric: micro ? gate.metric : '',
    live_gate: micro && Number.isFinite(micro.liveGate) ? micro.liveGate : 0,
    candidate_gate: micro && Number.isFinite(micro.candidateGate) ? micro.candidateGate : 0,
    gate_margin: micro ? gate.margin : 0,
    accepted: micro ? (micro.accepted ? 1 : 0) : 1,
    checkpoint_id: publication?.checkpointId ?? '',
    published_version: publication?.version ?? -1,
    ended_at: Date.now(),
  };
}

/**
 * `streamrec experiment incremental`: the incremental experiment (trainer/incrementalExperiment.ts)
 * on a dataset, its rows in ClickHouse (`micro_epochs`, one per method and window, under one run
 * id), and the summary the benchmark prints.
 */
export async function runIncrementalJob(options: IncrementalJobOptions): Promise<{ runId: string; result: IncrementalExperimentResult; summary: IncrementalSummary }> {
  await initTf();
  const dataset = await loadSource(options.config, options.source);
  const runId = options.runId ?? `incremental-${options.trainer.model.type}-${dataset.name}-${new Date().toISOString().replace(/[-:.]/g, '').slice(0, 15)}-${randomBytes(3).toString('hex')}`;
  // CCFRec reads the latest rebuild's semantic IDs and text (SASRec goes without).
  const artifacts = options.trainer.model.type === 'ccfrec' ? await sideInfoFor(new ArtifactStore(options.config.artifacts.dir), dataset, options.trainer, options.source) : undefined;
  const sink = await openTrainingSink(options.config, options.writeRows);
  const writer: BufferedWriter | undefined = sink.writer;
  const micro = MicroEpochConfig.parse(options.micro ?? {});
  const gate = { metric: micro.gateMetric, margin: micro.gateMargin };
  try {
    const result = await runIncrementalExperiment({
      dataset,
      config: options.trainer,
      ...(artifacts ? { itemIds: artifacts.itemIds, sideInfo: artifacts.sideInfo } : {}),
      ...(options.micro ? { micro: options.micro } : {}),
      ...(options.windows !== undefined ? { windows: options.windows } : {}),
      ...(options.trainFraction !== undefined ? { trainFraction: options.trainFraction } : {}),
      methods: options.methods ?? INCREMENTAL_METHODS,
      ...(options.retrainOn ? { retrainOn: options.retrainOn } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
      onWindow: (row) => {
        writer?.write('micro_epochs', [microEpochRow(runId, { dataset: dataset.name, model: options.trainer.model.type }, row, gate)]);
        options.onWindow?.(row);
      },
    });
    return { runId, result, summary: summarizeIncremental(result) };
  } finally {
    await sink.close();
  }
}
