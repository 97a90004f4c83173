import type { ClickHouse } from '../infra/clickhouse';
import { createLogger } from '../logging';

const log = createLogger('ingest.lag_rows');

/**
 * Each lag check's per-partition lag (read from the broker's high-water marks) as `ingest_lag`
 * rows (infra/clickhouse/migrations/006_report_rows.ts), inserted every `flushMs`. The rows are
 * for people (the report charts them): a failed insert is logged and its rows dropped, never
 * retried against ingest's own writes, and at most `maxPending` rows wait.
 */
export class LagRows {
  private pending: Array<{ topic: string; partition: number; lag: number; group_id: string; measured_at: number }> = [];
  private readonly timer: NodeJS.Timeout;
  private flushing: Promise<void> | undefined;
  private warned = false;

  constructor(
    private readonly ch: ClickHouse,
    private readonly groupId: string,
    flushMs = 10_000,
    private readonly maxPending = 10_000,
  ) {
    this.timer = setInterval(() => void this.flush(), flushMs);
    this.timer.unref();
  }

  add(topic: string, partition: number, lag: number): void {
    if (this.pending.length >= this.maxPending) this.pending.shift();
    this.pending.push({ topic, partition, lag, group_id: this.groupId, measured_at: Date.now() });
  }

  /** Inserts what is pending (one insert at a time). */
  flush(): Promise<void> {
    this.flushing ??= (async () => {
      try {
        while (this.pending.length > 0) {
          const rows = this.pending;
          this.pending = [];
          await this.ch.insert('ingest_lag', rows);
        }
      } catch (error) {
        if (!this.warned) log.warn({ err: (error as Error).message }, 'ingest_lag rows could not be written (dropped; ingest goes on)');
        this.warned = true;
      } finally {
        this.flushing = undefined;
      }
    })();
    return this.flushing;
  }

  /** Stops the timer and writes what is pending. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flushing;
    await this.flush();
  }
}
