import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { MessageChannel } from 'node:worker_threads';
import { ClickHouseConfig } from '../../schemas/config';
import { startWorker } from '../worker';
import { openClickHouse } from './client';
import { serveClickHouseRelay } from './relay';

describe('embedded ClickHouse relayed to a worker thread', () => {
  it('runs the worker\'s commands, inserts (plain and shaped) and queries on this thread\'s engine, and returns its errors', async () => {
    const url = `chdb:${mkdtempSync(path.join(tmpdir(), 'streamrec-relay-'))}`;
    const database = `relay_${Math.random().toString(36).slice(2, 8)}`;
    const config = ClickHouseConfig.parse({ url, database });
    const here = await openClickHouse(config); // this thread holds the engine, as streamrec run's main thread does
    const { port1, port2 } = new MessageChannel();
    const close = serveClickHouseRelay(config, port1);
    try {
      const worker = startWorker(path.join(__dirname, 'testing', 'relayWorker'), { workerData: { port: port2, url, database }, transferList: [port2] });
      const reply = await new Promise<{ result?: { rows: unknown; failure: { name: string; message: string }; other: string }; error?: string }>((resolve, reject) => {
        worker.once('message', resolve);
        worker.once('error', reject);
      });
      await worker.terminate();
      expect(reply.error).toBeUndefined();
      expect(reply.result?.rows).toEqual([{ id: 1, name: 'plain' }, { id: 2, name: 'shaped' }]);
      expect(reply.result?.failure.name).toBe('StoreError');
      expect(reply.result?.failure.message).toMatch(/query failed: SELECT no_such_column.*no_such_column/s);
      expect(reply.result?.other).toMatch(/reaches embedded ClickHouse .* through its relay; it cannot open chdb:\/somewhere\/else/);
      // What the worker wrote is in this thread's engine.
      const [count] = await here.query<{ n: number | string }>(`SELECT count() AS n FROM ${here.table('relayed')}`);
      expect(Number(count?.n)).toBe(2);
    } finally {
      await close();
      await here.close();
    }
  });
});
