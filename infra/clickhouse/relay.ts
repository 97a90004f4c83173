import type { MessagePort } from 'node:worker_threads';
import { ConfigError } from '../../errors';
import type { ClickHouseConfig } from '../../schemas/config';
import { openChdbTransport, setClickHouseRelay, type ClickHouseRelay, type ClickHouseTransport, type InsertOptions } from './client';

/**
 * Embedded chDB between threads. The engine is process-wide and takes one data directory, so a
 * worker thread (the live loop's trainer in `streamrec run`) cannot open it again: the thread that
 * holds it serves its queries over a MessagePort (`serveClickHouseRelay`), and the worker installs
 * the other end (`useClickHouseRelay`), after which its `openClickHouse` for that URL gives a
 * {@link ClickHouse} whose calls run in the holding thread. Retries and migrations stay with the
 * opener, as for any transport; errors come back with their message and code.
 */

type Call =
  | { readonly op: 'command' | 'query'; readonly query: string; readonly params?: Record<string, unknown> }
  | { readonly op: 'insert'; readonly table: string; readonly rows: readonly object[]; readonly columns?: readonly string[]; readonly settings?: InsertOptions<object>['settings'] };

type Request = Call & { readonly id: number };

type Reply = { readonly id: number; readonly value?: unknown } | { readonly id: number; readonly error: { readonly message: string; readonly code?: unknown } };

/**
 * Serves `config`'s embedded ClickHouse on `port` until the returned close is called (which also
 * closes the port and releases this thread's reference to the engine).
 */
export function serveClickHouseRelay(config: ClickHouseConfig, port: MessagePort): () => Promise<void> {
  const transport = openChdbTransport(config);
  const handle = async (request: Request): Promise<unknown> => {
    switch (request.op) {
      case 'command':
        return transport.command(request.query, request.params);
      case 'query':
        return transport.query(request.query, request.params);
      case 'insert': {
        // Rows of a shaped insert come as value arrays in the shape's column order.
        const { columns } = request;
        const options: InsertOptions<object> = { ...(columns ? { shape: { columns, values: (row: object) => row as unknown[] } } : {}), ...(request.settings ? { settings: request.settings } : {}) };
        return transport.insert(request.table, request.rows, options);
      }
    }
  };
  port.on('message', (request: Request) => {
    handle(request).then(
      (value) => port.postMessage({ id: request.id, value } satisfies Reply),
      (error: unknown) => port.postMessage({ id: request.id, error: { message: error instanceof Error ? error.message : String(error), code: (error as { code?: unknown })?.code } } satisfies Reply),
    );
  });
  let closed = false;
  return async () => {
    if (closed) return;
    closed = true;
    port.close();
    await transport.close();
  };
}

/** The worker's end: `openClickHouse` for `url` in this thread goes through `port`. */
export function useClickHouseRelay(port: MessagePort, url: string): void {
  const pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  let next = 0;
  port.unref(); // an idle relay does not keep the worker alive; a pending request does
  port.on('message', (reply: Reply) => {
    const waiting = pending.get(reply.id);
    if (!waiting) return;
    pending.delete(reply.id);
    if (pending.size === 0) port.unref();
    if ('error' in reply) waiting.reject(Object.assign(new Error(reply.error.message), reply.error.code === undefined ? {} : { code: reply.error.code }));
    else waiting.resolve(reply.value);
  });
  const call = <T>(request: Call): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const id = next++;
      pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      if (pending.size === 1) port.ref();
      port.postMessage({ ...request, id });
    });
  const transport: ClickHouseTransport = {
    command: (query, params) => call<void>({ op: 'command', query, ...(params ? { params } : {}) }),
    query: <T>(query: string, params?: Record<string, unknown>) => call<T[]>({ op: 'query', query, ...(params ? { params } : {}) }),
    insert: (table, rows, { shape, settings }) =>
      call<void>({ op: 'insert', table, rows: shape ? rows.map((r) => shape.values(r)) : rows, ...(shape ? { columns: shape.columns } : {}), ...(settings ? { settings } : {}) }),
    close: async () => undefined, // the engine is the serving thread's; the port stays for this thread's other opens
  };
  const relay: ClickHouseRelay = {
    transport(config: ClickHouseConfig) {
      if (config.url !== url) throw new ConfigError(`clickhouse.url: this thread reaches embedded ClickHouse ${url} through its relay; it cannot open ${config.url} as well`);
      return transport;
    },
  };
  setClickHouseRelay(relay);
}
