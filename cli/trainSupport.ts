import { ArtifactStore } from '../infra/artifacts';
import { BufferedWriter, openClickHouse, type ClickHouse } from '../infra/clickhouse';
import { createLogger } from '../logging';
import { ClickHouseTrainingObserver, type TrainingObserver, type TrainingProgress } from '../trainer';
import type { AppConfig } from './config';
import { printTable } from './table';
import { progressBar } from './progress';
import path from 'node:path';

const log = createLogger('cli.train');

/** The ClickHouse side of a training command: the tables' observer, closed with `close`. */
export interface TrainingSink {
  readonly observer: TrainingObserver | undefined;
  close(): Promise<void>;
}

/**
 * Opens ClickHouse and a buffered writer for the run's rows. Rows that cannot be written (an
 * outage) are retried, then spooled under the artifacts directory and sent by the next run.
 */
export async function openTrainingSink(config: AppConfig, enabled: boolean): Promise<TrainingSink> {
  if (!enabled) return { observer: undefined, close: async () => undefined };
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
    close: async () => {
      await writer.close();
      await client?.close();
    },
  };
}

/** Progress bars for training and evaluation phases. */
export function trainingProgress(): { onProgress: (p: TrainingProgress) => void; stop: () => void } {
  let bar: ReturnType<typeof progressBar> | undefined;
  let key = '';
  return {
    onProgress: (p) => {
      const k = `${p.phase}:${p.epoch}`;
      if (k !== key) {
        bar?.stop();
        key = k;
        bar = progressBar(p.phase === 'train' ? `epoch ${p.epoch + 1}/${p.epochs}` : `evaluate    `, p.steps, p.phase === 'train' ? 'steps' : 'users');
      }
      bar?.update(p.step, {
        ...(p.loss !== undefined ? { loss: p.loss.toFixed(4) } : {}),
        ...(p.samplesPerSecond !== undefined ? { 'samples/s': Math.round(p.samplesPerSecond) } : {}),
      });
    },
    stop: () => bar?.stop(),
  };
}

/** Prints Recall / NDCG / MRR / Hit by K as a table. */
export function printMetrics(metrics: Readonly<Record<string, number>>, label: string): void {
  const ks = [...new Set(Object.keys(metrics).map((m) => Number(m.split('@')[1])))].sort((a, b) => a - b);
  printTable(
    ks.map((k) => ({
      [label]: `@${k}`,
      recall: (metrics[`recall@${k}`] ?? NaN).toFixed(4),
      ndcg: (metrics[`ndcg@${k}`] ?? NaN).toFixed(4),
      mrr: (metrics[`mrr@${k}`] ?? NaN).toFixed(4),
      hit: (metrics[`hit@${k}`] ?? NaN).toFixed(4),
    })),
  );
}

export function artifactStore(config: AppConfig): ArtifactStore {
  return new ArtifactStore(config.artifacts.dir);
}
