import type { Command } from 'commander';
import { ConfigError } from '../errors';
import { datasetEvents, interactionCount, loadDataset, type LoadedDataset, type ReplayEvent } from '../datasets';
import { limitInteractions, parseSpeed, type ReplaySpeed } from '../ingest';

/** The replay options shared by `replay` and `ingest --source memory:<dataset>`. */
export interface ReplayOptions {
  readonly dataset: string;
  readonly speed: string;
  readonly seed: string;
  readonly limit?: string;
}

/** The dataset's events to replay (at most `--limit` interactions), how many, and at what speed. */
export async function replaySelection(opts: ReplayOptions): Promise<{ dataset: LoadedDataset; events: Iterable<ReplayEvent>; total: number; speed: ReplaySpeed }> {
  const speed = parseSpeed(opts.speed);
  const seed = Number(opts.seed);
  if (!Number.isInteger(seed)) throw new ConfigError(`--seed must be an integer, got ${JSON.stringify(opts.seed)}`);
  let limit = Infinity;
  if (opts.limit !== undefined) {
    limit = Number(opts.limit);
    if (!Number.isInteger(limit) || limit < 0) throw new ConfigError(`--limit must be a whole number of interactions >= 0, got ${JSON.stringify(opts.limit)}`);
  }
  const dataset = await loadDataset(opts.dataset, { seed });
  return { dataset, events: limitInteractions(datasetEvents(dataset), limit), total: dataset.items.length + Math.min(limit, interactionCount(dataset)), speed };
}

/** The replay flags, for the commands that replay a dataset (`scope`: when they apply). */
export function replayFlags(command: Command, scope?: string): Command {
  const note = scope ? ` (${scope})` : '';
  return command
    .option('--speed <max|Nx>', `max, or a factor on event time (3600x = one hour of events per second)${note}`, 'max')
    .option('--seed <n>', `seed of generated timestamps (datasets without them)${note}`, '2018')
    .option('--limit <n>', `stop after this many interactions${note}`);
}
