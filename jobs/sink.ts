import path from 'node:path';
import { BufferedWriter, openClickHouse, type ClickHouse } from '../infra/clickhouse';
import { createLogger } from '../logging';
import { ClickHouseTrainingObserver, type TrainingObserver } from '../trainer';
import type { AppConfig } from './config';

const log = createLogger('jobs.sink');

/** Where a job's run, epoch and evaluation rows go: ClickHouse through a buffered writer, or nowhere. */
export interface TrainingSink {
  readonly observer: TrainingObserver | undefined;
  /** The writer behind the observer, for a job's other rows (micro-epochs); none when rows are off. */
  readonly writer: BufferedWriter | undefined;
  close(): Promise<void>;
}

/**
 * Opens ClickHouse and a buffered writer for a run's rows (`enabled` false: no rows). Rows that
 * cannot be written during an outage are retried, then spooled beside the artifact store and
 * sent by the next run.
 */
export async function openTrainingSink(config: AppConfig, enabled: boolean): Promise<TrainingSink> {
  if (!enabled) return { observer: undefined, writer: undefined, close: async () => undefined };
  let ch: ClickHouse | undefined;
  try {
    ch = await openClickHouse(config.clickhouse);
  } catch (error) {
    log.warn({ err: (error as Error).message }, 'ClickHouse unavailable at start; training rows are spooled and sent by a later run');
  }
  const client = ch;
  const writer = new BufferedWriter({
    sink: async (table, rows) => {
      if (!client) throw new Error('ClickHouse is not connected');
      await client.insert(table, rows);
    },
    spoolDir: path.join(path.dirname(config.artifacts.dir), 'spool'),
  });
  if (client) await writer.recoverSpool();
  return {
    observer: new ClickHouseTrainingObserver(writer),
    writer,
    close: async () => {
      await writer.close();
      await client?.close();
    },
  };
}

/** Calls every observer's hooks in turn (the ClickHouse rows and, say, a job's own bookkeeping). */
export function combineObservers(...observers: ReadonlyArray<TrainingObserver | undefined>): TrainingObserver | undefined {
  const list = observers.filter((o): o is TrainingObserver => o !== undefined);
  if (list.length <= 1) return list[0];
  return {
    runStarted: async (run) => {
      for (const o of list) await o.runStarted(run);
    },
    epochEnded: async (row) => {
      for (const o of list) await o.epochEnded(row);
    },
    evaluated: async (rows) => {
      for (const o of list) await o.evaluated(rows);
    },
    runEnded: async (end) => {
      for (const o of list) await o.runEnded(end);
    },
  };
}
