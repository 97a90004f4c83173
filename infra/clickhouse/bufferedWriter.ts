import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { StoreError } from '../../errors';
import { createLogger } from '../../logging';
import { writeFileAtomic } from '../artifacts';

const log = createLogger('infra.clickhouse.buffered');

/** Writes rows to a table; rejects when the store is unreachable. */
export type RowSink = (table: string, rows: readonly object[]) => Promise<void>;

export interface BufferedWriterOptions {
  readonly sink: RowSink;
  /** Send as soon as this many rows are waiting. */
  readonly batchRows?: number;
  /** Send at least this often while rows are waiting. */
  readonly intervalMs?: number;
  /** First retry delay after a failed send; doubles up to `maxRetryMs`. */
  readonly retryMs?: number;
  readonly maxRetryMs?: number;
  /**
   * Where rows that could not be sent by `close` are kept (one JSON-lines file per close) and
   * sent first by the next writer on the same directory. Without it, `close` fails instead.
   */
  readonly spoolDir?: string;
}

interface Pending {
  table: string;
  rows: object[];
}

/**
 * Batches rows per table and sends them in the background, so that a slow or unavailable
 * ClickHouse never slows the caller (the training loop) and never loses a row: failed sends are
 * kept and retried with backoff; rows still unsent at `close` go to a spool file that the next
 * writer sends first.
 */
export class BufferedWriter {
  private readonly queue: Pending[] = [];
  private sending: Promise<void> | undefined;
  /** The batch the sink is writing now. */
  private inFlight: Pending | undefined;
  private timer: NodeJS.Timeout | undefined;
  private retryDelay: number;
  private nextAttemptAt = 0;
  private closed = false;
  /** Rows sent successfully, per table. */
  readonly sent = new Map<string, number>();
  failures = 0;

  constructor(private readonly options: BufferedWriterOptions) {
    this.retryDelay = options.retryMs ?? 500;
    this.timer = setInterval(() => void this.pump(), options.intervalMs ?? 1000);
    this.timer.unref();
  }

  /** Rows waiting to be sent. */
  get waiting(): number {
    return this.queue.reduce((n, p) => n + p.rows.length, 0);
  }

  /** Queues rows; returns at once. */
  write(table: string, rows: readonly object[]): void {
    if (this.closed) throw new StoreError(`buffered writer is closed; cannot queue rows for ${table}`);
    if (rows.length === 0) return;
    const last = this.queue[this.queue.length - 1];
    // Never into the batch being sent: its rows are what the sink was given (a push would be dropped with it).
    if (last && last.table === table && last !== this.inFlight) last.rows.push(...rows);
    else this.queue.push({ table, rows: [...rows] });
    if (this.waiting >= (this.options.batchRows ?? 1000)) void this.pump();
  }

  /** Sends spooled rows of earlier writers first (call once after creating the writer). */
  async recoverSpool(): Promise<number> {
    const dir = this.options.spoolDir;
    if (!dir) return 0;
    let files: string[];
    try {
      files = (await fs.readdir(dir)).filter((f) => f.endsWith('.jsonl')).sort();
    } catch {
      return 0;
    }
    let rows = 0;
    for (const file of files) {
      const text = await fs.readFile(path.join(dir, file), 'utf8');
      for (const line of text.split('\n')) {
        if (line.length === 0) continue;
        const { table, row } = JSON.parse(line) as { table: string; row: object };
        this.write(table, [row]);
        rows++;
      }
      await fs.rm(path.join(dir, file));
    }
    if (rows > 0) log.info({ rows, files: files.length }, 'spooled rows queued again');
    return rows;
  }

  /** Sends what is waiting (one attempt per batch, honouring the backoff). */
  private pump(): Promise<void> {
    if (this.sending || this.queue.length === 0 || Date.now() < this.nextAttemptAt) return this.sending ?? Promise.resolve();
    this.sending = (async () => {
      while (this.queue.length > 0) {
        const head = this.queue[0] as Pending;
        this.inFlight = head;
        try {
          await this.options.sink(head.table, head.rows);
        } catch (error) {
          this.failures++;
          this.nextAttemptAt = Date.now() + this.retryDelay;
          log.warn({ table: head.table, rows: head.rows.length, retryInMs: this.retryDelay, err: (error as Error).message }, 'send failed; rows kept for retry');
          this.retryDelay = Math.min(this.retryDelay * 2, this.options.maxRetryMs ?? 30_000);
          return;
        } finally {
          this.inFlight = undefined;
        }
        this.queue.shift();
        this.sent.set(head.table, (this.sent.get(head.table) ?? 0) + head.rows.length);
        this.retryDelay = this.options.retryMs ?? 500;
      }
    })().finally(() => {
      this.sending = undefined;
    });
    return this.sending;
  }

  /** Sends everything, retrying until `deadlineMs` has passed. Resolves true when all was sent. */
  async flush(deadlineMs = 10_000): Promise<boolean> {
    const deadline = Date.now() + deadlineMs;
    while (this.queue.length > 0 && Date.now() < deadline) {
      await this.pump();
      if (this.queue.length > 0) await new Promise((r) => setTimeout(r, Math.max(10, Math.min(this.nextAttemptAt - Date.now(), deadline - Date.now()))));
    }
    return this.queue.length === 0;
  }

  /**
   * Flushes; rows that still cannot be sent are written to the spool directory (or, without
   * one, reported as an error so that they are not dropped silently).
   */
  async close(deadlineMs = 10_000): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    if (await this.flush(deadlineMs)) return;
    const lines = this.queue.flatMap((p) => p.rows.map((row) => JSON.stringify({ table: p.table, row })));
    if (!this.options.spoolDir) {
      throw new StoreError(`could not send ${lines.length} rows before closing and no spool directory is set`);
    }
    const file = path.join(this.options.spoolDir, `${Date.now()}-${randomBytes(4).toString('hex')}.jsonl`);
    await writeFileAtomic(file, `${lines.join('\n')}\n`);
    log.warn({ rows: lines.length, file }, 'rows spooled to disk; the next writer sends them');
    this.queue.length = 0;
  }
}
