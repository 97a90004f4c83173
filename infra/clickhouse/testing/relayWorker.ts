import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { ClickHouseConfig } from '../../../schemas/config';
import { openClickHouse } from '../client';
import { useClickHouseRelay } from '../relay';

/** The relay test's worker: opens ClickHouse through the relay, inserts, reads back, reports. */
const { port, url, database } = workerData as { port: MessagePort; url: string; database: string };
useClickHouseRelay(port, url);

async function main(): Promise<unknown> {
  const ch = await openClickHouse(ClickHouseConfig.parse({ url, database, insertRetries: 0, retryBaseMs: 1 }));
  await ch.command(`CREATE TABLE IF NOT EXISTS ${ch.table('relayed')} (id UInt32, name String) ENGINE = MergeTree ORDER BY id`);
  await ch.insert('relayed', [{ id: 1, name: 'plain' }]);
  await ch.insert('relayed', [{ id: 2, name: 'shaped' }], { shape: { columns: ['id', 'name'], values: (r: { id: number; name: string }) => [r.id, r.name] } });
  const rows = await ch.query<{ id: number; name: string }>(`SELECT id, name FROM ${ch.table('relayed')} WHERE id >= {from:UInt32} ORDER BY id`, { from: 1 });
  let failure: unknown;
  await ch.query('SELECT no_such_column FROM system.one').catch((error: unknown) => (failure = { name: (error as Error).name, message: (error as Error).message }));
  let other: unknown;
  try {
    await openClickHouse(ClickHouseConfig.parse({ url: 'chdb:/somewhere/else', database }));
  } catch (error) {
    other = (error as Error).message;
  }
  await ch.close();
  return { rows, failure, other };
}

main().then(
  (result) => parentPort?.postMessage({ result }),
  (error: unknown) => parentPort?.postMessage({ error: String(error) }),
);
