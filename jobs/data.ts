import { ConfigError } from '../errors';
import { openClickHouse } from '../infra/clickhouse';
import { loadArchiveDataset, loadDataset, type LoadedDataset } from '../datasets';
import type { AppConfig } from './config';

/** Where a job reads its catalog and interactions: a dataset (name or directory) or the ClickHouse archive. */
export type DataSource =
  | { readonly kind: 'dataset'; readonly dataset: string }
  /** `below`: only the interactions below this stream position (the live trainer's rebuilt candidate), not all that is archived. */
  | { readonly kind: 'archive'; readonly below?: Readonly<Record<string, number>> };

/** The source that a command's `--dataset` / `--from-clickhouse` name; exactly one must be given. */
export function dataSourceOf(command: string, dataset: string | undefined, fromClickhouse: boolean | undefined): DataSource {
  if ((dataset === undefined) === (fromClickhouse !== true)) {
    throw new ConfigError(`${command} needs exactly one data source: --dataset <name|dir> or --from-clickhouse`);
  }
  return dataset !== undefined ? { kind: 'dataset', dataset } : { kind: 'archive' };
}

/** How to name a source in a hint (`--dataset x` or `--from-clickhouse`). */
export function sourceFlag(source: DataSource): string {
  return source.kind === 'dataset' ? `--dataset ${source.dataset}` : '--from-clickhouse';
}

/** Loads a source: the dataset, or the archive's latest catalog and every user's interactions. */
export async function loadSource(config: AppConfig, source: DataSource): Promise<LoadedDataset> {
  if (source.kind === 'dataset') return loadDataset(source.dataset);
  const ch = await openClickHouse(config.clickhouse);
  try {
    return await loadArchiveDataset(ch, source.below ? { below: source.below } : {});
  } finally {
    await ch.close();
  }
}
