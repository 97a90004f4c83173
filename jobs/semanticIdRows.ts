import type { LoadedArtifact } from '../infra/artifacts';
import type { BufferedWriter } from '../infra/clickhouse';
import { createLogger } from '../logging';
import type { QuantizationMetrics } from '../quantizer';
import type { AppConfig } from './config';
import { openTrainingSink } from './sink';

const log = createLogger('jobs.semantic_ids');

/** How a semantic-ID version was made: codebooks fitted on every item, or new items coded with the existing ones. */
export type SemanticIdBuildKind = 'rebuild' | 'new_items';

/**
 * The `semantic_id_builds` row (infra/clickhouse/migrations/006_report_rows.ts) of a `semantic_ids`
 * artifact, from its manifest: the quantizer's settings and the metrics written with it.
 */
export function semanticIdBuildRow(artifact: LoadedArtifact, kind: SemanticIdBuildKind, trainSeconds = 0): Record<string, unknown> {
  const settings = artifact.manifest.settings as { method?: string; levels?: number; codesPerLevel?: number };
  const metrics = (artifact.manifest.metrics ?? {}) as Partial<QuantizationMetrics> & { newItems?: number; newItemsRelMse?: number };
  const finite = (v: number | undefined): number | null => (v !== undefined && Number.isFinite(v) ? v : null);
  return {
    semantic_ids_id: artifact.id,
    kind,
    method: settings.method ?? '',
    items: metrics.items ?? 0,
    new_items: metrics.newItems ?? 0,
    levels: settings.levels ?? metrics.utilization?.length ?? 0,
    codes_per_level: settings.codesPerLevel ?? 0,
    fraction_used: (metrics.utilization ?? []).map((u) => u.fractionUsed),
    perplexity: (metrics.utilization ?? []).map((u) => u.perplexity),
    collision_rate: metrics.collisionRate ?? 0,
    distinct_codes: metrics.distinctCodes ?? 0,
    max_items_per_code: metrics.maxItemsPerCode ?? 0,
    rel_mse: finite(metrics.relMse),
    new_items_rel_mse: finite(metrics.newItemsRelMse),
    train_s: trainSeconds,
    built_at: Date.parse(artifact.manifest.createdAt) || Date.now(),
  };
}

/**
 * Writes `semantic_id_builds` rows: through `writer` when the caller has one (its spool keeps them
 * through an outage), else through a sink opened for them. A failure is logged, never thrown: the
 * artifacts are what the pipeline runs on; the rows are for people.
 */
export async function recordSemanticIdBuilds(config: AppConfig, rows: ReadonlyArray<Record<string, unknown>>, writer?: BufferedWriter): Promise<void> {
  if (rows.length === 0) return;
  if (writer) {
    writer.write('semantic_id_builds', rows);
    return;
  }
  try {
    const sink = await openTrainingSink(config, true);
    try {
      sink.writer?.write('semantic_id_builds', rows);
    } finally {
      await sink.close();
    }
  } catch (error) {
    log.warn({ err: (error as Error).message, rows: rows.length }, 'semantic_id_builds rows could not be written');
  }
}
