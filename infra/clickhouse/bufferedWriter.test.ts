import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { StoreError } from '../../errors';
import { ClickHouseConfig } from '../../schemas/config';
import { BufferedWriter, openClickHouse, type ClickHouse, type RowSink } from './index';

describe('BufferedWriter against embedded ClickHouse with an outage', () => {
  let ch: ClickHouse;
  let down = false;
  let sink: RowSink;
  beforeAll(async () => {
    ch = await openClickHouse(ClickHouseConfig.parse({ url: `chdb:${mkdtempSync(path.join(tmpdir(), 'streamrec-buf-'))}`, insertRetries: 0 }));
    // The outage: every send fails like a refused connection while `down` is set.
    sink = async (table, rows) => {
      if (down) throw new StoreError('connect ECONNREFUSED 127.0.0.1:8123', { retriable: true });
      await ch.insert(table, rows);
    };
  });
  afterAll(async () => {
    await ch.close();
  });

  const epoch = (run: string, e: number) => ({
    run_id: run, epoch: e, steps: 1, samples: 10, loss: 1 / (e + 1), loss_parts: { rec: 1 }, samples_per_s: 5,
    duration_s: 2, learning_rate: 0.001, skipped_steps: 0, ended_at: Date.now(),
  });
  const count = async (run: string): Promise<number> =>
    Number((await ch.query<{ n: string }>(`SELECT count() AS n FROM ${ch.table('training_epochs')} FINAL WHERE run_id = {run:String}`, { run }))[0]?.n);

  it('keeps rows through an outage and sends them once ClickHouse is back, without blocking the writer', async () => {
    const writer = new BufferedWriter({ sink, batchRows: 2, intervalMs: 20, retryMs: 20, maxRetryMs: 40 });
    down = true;
    for (let e = 0; e < 5; e++) writer.write('training_epochs', [epoch('outage', e)]); // returns at once
    expect(await writer.flush(150)).toBe(false);
    expect(writer.waiting).toBe(5);
    expect(writer.failures).toBeGreaterThan(0);
    expect(await count('outage')).toBe(0);
    down = false;
    expect(await writer.flush(5000)).toBe(true);
    expect(await count('outage')).toBe(5);
    await writer.close();
  });

  it('keeps rows written while a send of the same table is in flight (none dropped with the batch being sent)', async () => {
    // A slow sink: rows queued during its insert must go in the next batch, not into the one being sent.
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let first = true;
    const slow: RowSink = async (table, rows) => {
      const copy = [...rows];
      if (first) {
        first = false;
        await gate;
      }
      await ch.insert(table, copy);
    };
    const writer = new BufferedWriter({ sink: slow, intervalMs: 5, batchRows: 1000 });
    writer.write('training_epochs', [epoch('run-inflight', 0)]);
    await new Promise((r) => setTimeout(r, 30)); // the first send is now waiting on the gate
    for (let e = 1; e < 6; e++) writer.write('training_epochs', [epoch('run-inflight', e)]);
    release();
    await writer.close();
    expect(await count('run-inflight')).toBe(6);
  });

  it('spools rows it could not send by close, and the next writer sends them', async () => {
    const spoolDir = mkdtempSync(path.join(tmpdir(), 'streamrec-spool-'));
    down = true;
    const first = new BufferedWriter({ sink, intervalMs: 20, retryMs: 20, spoolDir });
    for (let e = 0; e < 3; e++) first.write('training_epochs', [epoch('spooled', e)]);
    await first.close(100);
    expect(readdirSync(spoolDir).filter((f) => f.endsWith('.jsonl'))).toHaveLength(1);
    expect(() => first.write('training_epochs', [epoch('spooled', 9)])).toThrow(/closed/);

    down = false;
    const second = new BufferedWriter({ sink, intervalMs: 20, retryMs: 20, spoolDir });
    expect(await second.recoverSpool()).toBe(3);
    await second.close();
    expect(await count('spooled')).toBe(3);
    expect(readdirSync(spoolDir).filter((f) => f.endsWith('.jsonl'))).toHaveLength(0);
  });

  it('refuses to drop rows silently when there is nowhere to spool them', async () => {
    down = true;
    const writer = new BufferedWriter({ sink, intervalMs: 20, retryMs: 20 });
    writer.write('training_epochs', [epoch('lost', 0)]);
    await expect(writer.close(60)).rejects.toThrow(/could not send 1 rows/);
    down = false;
  });
});
