import { EventEmitter } from 'node:events';

/**
 * Instrumentation events, declared in one place. Listeners get a typed payload; the CLI, tests
 * and metrics subscribe to them instead of parsing logs.
 */
export interface InstrumentationEvents {
  /** One source batch went through the ingest operators. */
  'ingest.batch_end': {
    topic: string;
    partition: number;
    messages: number;
    accepted: number;
    deadLetters: number;
    /** Dead letters of this batch by error code. */
    deadLetterCodes: Record<string, number>;
    skipped: number;
    /** Accepted messages whose key is absent or not their id (ingest.keyCheck `count`). */
    keyMismatches: number;
    durationMs: number;
  };
  /** Pending work was made durable and offsets committed. */
  'ingest.flush_end': {
    messages: number;
    archived: number;
    deadLetters: number;
    histories: number;
    committed: number;
    durationMs: number;
    /** Time spent writing archive rows and dead letters, the changelog, and committing. */
    archiveMs: number;
    historiesMs: number;
    commitMs: number;
    /** The flush interval in force when it started (the catch-up interval while far behind). */
    intervalMs: number;
  };
  /** The archive refused a validated event's row for its content: it was dead-lettered as `sink_refused`. */
  'ingest.sink_refused': { topic: string; partition: number; offset: string };
  /** The Kafka consumer got a fetch response from a broker (`broker`: its node id). */
  'ingest.fetch_end': { broker: number; durationMs: number };
  /**
   * A partition's batch was handled: `lag` messages of the partition were behind it (its end
   * when fetched, less the batch's last offset + 1).
   */
  'ingest.partition_lag': { topic: string; partition: number; lag: number };
  /** The broker deleted messages `fromOffset`..`toOffset` (retention, a size limit) before ingest read them. */
  'ingest.retention_gap': { topic: string; partition: number; fromOffset: number; toOffset: number; messages: number };
  /** A partition with `lag` messages behind it has not moved from `nextOffset` for `stillMs` (reported once per stall). */
  'ingest.partition_stalled': { topic: string; partition: number; nextOffset: number; lag: number; stillMs: number };
  /** This process's partitions changed (a consumer-group rebalance). */
  'ingest.assignment': { topic: string; assigned: number[]; revoked: number[] };
  /** Histories were restored from the changelog. */
  'ingest.restore_end': { records: number; users: number; invalid: number; durationMs: number };
  /** A step of a rebuild job (jobs/rebuild.ts): `step` is a features step or `quantize:<method>`. */
  'rebuild.progress': { step: string; done: number; total: number };
  /** Progress of a training or evaluation job: steps of an epoch, or users evaluated. */
  'trainer.progress': {
    phase: 'train' | 'evaluate';
    epoch: number;
    epochs: number;
    step: number;
    steps: number;
    loss?: number;
    samplesPerSecond?: number;
    etaSeconds?: number;
  };
  /** A micro-epoch of training finished (trainer). */
  'trainer.micro_epoch_end': { runId: string; epoch: number; samples: number; loss: number; durationMs: number };
  /** Serving switched to another model version (serving/modelHolder.ts). */
  'serving.swapped': { from: number; to: number; checkpointId: string; durationMs: number };
  /** Serving could not load a published version and kept the current one. */
  'serving.swap_failed': { version: number; checkpointId: string; error: string };
  /** A checkpoint became the live model version (jobs/publish.ts). */
  'model.published': { version: number; checkpointId: string; modelType: string; split: string; metrics: Record<string, number> };
}

export type InstrumentationName = keyof InstrumentationEvents;

export class Instrumentation {
  private readonly emitter = new EventEmitter();

  emit<K extends InstrumentationName>(name: K, payload: InstrumentationEvents[K]): void {
    this.emitter.emit(name, payload);
  }

  on<K extends InstrumentationName>(name: K, listener: (payload: InstrumentationEvents[K]) => void): () => void {
    this.emitter.on(name, listener);
    return () => this.emitter.off(name, listener);
  }
}
