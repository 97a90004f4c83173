import { createClient, type ClickHouseClient, type ClickHouseSettings } from '@clickhouse/client';
import path from 'node:path';
import { mkdirSync } from 'node:fs';
import { ConfigError, StoreError } from '../../errors';
import { createLogger } from '../../logging';
import type { ClickHouseConfig } from '../../schemas/config';
import { retry, type RetryPolicy } from '../retry';
import { runMigrations, type Migration } from './migrations';
import { MIGRATIONS } from './migrations/index';

const log = createLogger('infra.clickhouse');

export type ClickHouseKind = 'chdb' | 'server';

/**
 * How a {@link ClickHouse} reaches the engine: the official client (embedded chDB or a server),
 * or a relay to the thread that holds the embedded engine (see `relay.ts`).
 */
export interface ClickHouseTransport {
  command(query: string, params?: Record<string, unknown>): Promise<void>;
  query<T>(query: string, params?: Record<string, unknown>): Promise<T[]>;
  /** One attempt at an insert (the caller retries). */
  insert<T extends object>(table: string, rows: readonly T[], options: InsertOptions<T>): Promise<void>;
  close(): Promise<void>;
}

/**
 * The ClickHouse layer: one `@clickhouse/client` client, either on embedded chDB (a data
 * directory, no server) or on a server URL, with the streamrec database migrated.
 */
export class ClickHouse {
  private closed = false;

  constructor(
    private readonly transport: ClickHouseTransport,
    readonly kind: ClickHouseKind,
    readonly url: string,
    readonly database: string,
    private readonly insertPolicy: RetryPolicy,
  ) {}

  /** Fully qualified, quoted table name. */
  table(name: string): string {
    return `\`${this.database}\`.\`${name}\``;
  }

  async command(query: string, params?: Record<string, unknown>): Promise<void> {
    try {
      await this.transport.command(query, params);
    } catch (cause) {
      throw toStoreError(cause, `command failed: ${query.slice(0, 120)}`);
    }
  }

  async query<T>(query: string, params?: Record<string, unknown>): Promise<T[]> {
    try {
      return await this.transport.query<T>(query, params);
    } catch (cause) {
      throw toStoreError(cause, `query failed: ${query.slice(0, 120)}`);
    }
  }

  /**
   * Inserts rows (JSONEachRow), retrying transient failures per the configured policy. A `shape`
   * (the table's columns and a row's values in that order) makes embedded chDB's payload cheaper
   * to build than reading each row's keys; `settings` are ClickHouse settings of this insert.
   */
  async insert<T extends object>(table: string, rows: readonly T[], options: InsertOptions<T> = {}): Promise<void> {
    if (rows.length === 0) return;
    const policy = this.insertPolicy;
    await retry(async () => {
      try {
        await this.transport.insert(table, rows, options);
      } catch (cause) {
        throw toStoreError(cause, `insert of ${rows.length} rows into ${table} failed`);
      }
    }, {
      ...policy,
      onRetry: (error, attempt, delayMs) => {
        log.warn({ table, rows: rows.length, attempt, delayMs, err: (error as Error).message }, 'clickhouse insert failed, retrying');
        policy.onRetry?.(error, attempt, delayMs);
      },
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.transport.close();
  }
}

/** The official client's transport; embedded chDB's direct insert (`rawInsert`) passes the payload bytes to its parser without a stream. */
function clientTransport(client: ClickHouseClient, database: string, release: () => Promise<void>, rawInsert?: RawInsert): ClickHouseTransport {
  return {
    async command(query, params) {
      await client.command({ query, ...(params ? { query_params: params } : {}) });
    },
    async query<T>(query: string, params?: Record<string, unknown>): Promise<T[]> {
      const result = await client.query({ query, format: 'JSONEachRow', ...(params ? { query_params: params } : {}) });
      return (await result.json()) as T[];
    },
    async insert(table, rows, { shape, settings }) {
      const plainName = `${database}.${table}`; // chDB's raw insert takes unquoted names only
      if (rawInsert && /^\w+\.\w+$/.test(plainName)) {
        const columns = shape?.columns ?? Object.keys(rows[0] as object);
        await rawInsert(plainName, columns, jsonCompactEachRow(rows, columns, shape), settings);
      } else {
        await client.insert({
          table: `\`${database}\`.\`${table}\``,
          values: rows as unknown as object[],
          format: 'JSONEachRow',
          ...(settings ? { clickhouse_settings: settings } : {}),
        });
      }
    },
    close: release,
  };
}

type RawInsert = (table: string, columns: readonly string[], body: Buffer, settings?: ClickHouseSettings) => Promise<unknown>;

export interface InsertOptions<T> {
  readonly shape?: RowShape<T>;
  readonly settings?: ClickHouseSettings;
}

/** A table's columns and how to read a row's values in that order. */
export interface RowShape<T> {
  readonly columns: readonly string[];
  values(row: T): unknown[];
}

/**
 * Rows of one shape (`shape`, else the first row's keys in order) as a JSONCompactEachRow
 * payload: arrays instead of objects, a quarter less to write and for chDB to parse than
 * JSONEachRow.
 */
function jsonCompactEachRow<T extends object>(rows: readonly T[], columns: readonly string[], shape?: RowShape<T>): Buffer {
  let body = '';
  if (shape) for (const row of rows) body += `${JSON.stringify(shape.values(row))}\n`;
  else for (const row of rows) body += `${JSON.stringify(columns.map((c) => (row as Record<string, unknown>)[c] ?? null))}\n`;
  return Buffer.from(body, 'utf8');
}

const TRANSIENT = /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|socket hang up|Timeout|timed out|503|502|TOO_MANY_SIMULTANEOUS_QUERIES/i;

/**
 * ClickHouse error codes that say an inserted row's content cannot be stored (a parse error, a
 * value out of a type's range): the same rows fail again, and other rows would not.
 */
const ROW_CONTENT_CODES = new Set([
  6, // CANNOT_PARSE_TEXT
  25, // CANNOT_PARSE_ESCAPE_SEQUENCE (a lone surrogate)
  26, // CANNOT_PARSE_QUOTED_STRING
  27, // CANNOT_PARSE_INPUT_ASSERTION_FAILED
  38, // CANNOT_PARSE_DATE
  41, // CANNOT_PARSE_DATETIME
  53, // TYPE_MISMATCH
  69, // ARGUMENT_OUT_OF_BOUND
  70, // CANNOT_CONVERT_TYPE
  72, // CANNOT_PARSE_NUMBER
  117, // INCORRECT_DATA
  128, // TOO_LARGE_ARRAY_SIZE
  131, // TOO_LARGE_STRING_SIZE
  190, // SIZES_OF_ARRAYS_DONT_MATCH
  321, // VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
  349, // CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN
]);

/** The ClickHouse error code of `cause` (the HTTP client's, chDB's, or `Code: N` in a relayed message), or undefined. */
function clickhouseCode(cause: unknown, text: string): number | undefined {
  const c = cause as { clickhouseCode?: unknown; code?: unknown } | null;
  if (typeof c?.clickhouseCode === 'number') return c.clickhouseCode;
  if (typeof c?.code === 'string' && /^\d+$/.test(c.code)) return Number(c.code);
  const m = /\bCode: (\d+)\b/.exec(text);
  return m ? Number(m[1]) : undefined;
}

function toStoreError(cause: unknown, message: string): StoreError {
  const text = cause instanceof Error ? cause.message : String(cause);
  const code = (cause as { code?: unknown } | null)?.code;
  const chCode = clickhouseCode(cause, text);
  return new StoreError(`${message}: ${text}`, {
    cause,
    retriable: TRANSIENT.test(text) || code === 'ECONNREFUSED',
    context: chCode === undefined ? {} : { clickhouseCode: chCode, rowContent: ROW_CONTENT_CODES.has(chCode) },
  });
}

/**
 * Whether `error` is ClickHouse refusing inserted rows for their content (see ROW_CONTENT_CODES):
 * writing them again fails the same way, and the batch without them would succeed.
 */
export function refusesRowContent(error: unknown): boolean {
  return error instanceof StoreError && error.context.rowContent === true;
}

/** One embedded engine per process and data path: reference-counted connections. */
interface ChdbEngine {
  readonly client: ClickHouseClient;
  readonly rawInsert: RawInsert;
  refs: number;
}

const chdbEngines = new Map<string, ChdbEngine>();

function openChdb(dataPath: string): { client: ClickHouseClient; rawInsert: ChdbEngine['rawInsert']; release: () => Promise<void> } {
  const key = dataPath === ':memory:' ? dataPath : path.resolve(dataPath);
  let engine = chdbEngines.get(key);
  if (!engine) {
    const other = [...chdbEngines.keys()].find((k) => k !== key);
    if (other) {
      throw new ConfigError(
        `this process already has embedded ClickHouse open at ${other}; chDB allows one data directory per process (asked for ${key})`,
      );
    }
    if (key !== ':memory:') mkdirSync(key, { recursive: true });
    const { createChdbConnection } = require('chdb/connection') as typeof import('chdb/connection');
    const connection = createChdbConnection({ path: key });
    engine = {
      client: createClient({ connection } as never),
      rawInsert: (table, columns, body, settings) =>
        connection.chdb.rawInsert({
          table,
          columns,
          values: body,
          format: 'JSONCompactEachRow',
          // Insert settings are scalars; the client's type also allows a few structured ones.
          ...(settings ? { settings: settings as Record<string, string | number | boolean> } : {}),
        }),
      refs: 0,
    };
    chdbEngines.set(key, engine);
  }
  engine.refs++;
  const held = engine;
  return {
    client: held.client,
    rawInsert: held.rawInsert,
    release: async () => {
      held.refs--;
      if (held.refs === 0) {
        chdbEngines.delete(key);
        await held.client.close();
      }
    },
  };
}

/**
 * What a worker thread opens instead of the embedded engine: a transport relayed to the thread
 * that holds it (installed with `useClickHouseRelay`, see `relay.ts`).
 */
export interface ClickHouseRelay {
  transport(config: ClickHouseConfig): ClickHouseTransport;
}

let relayInThread: ClickHouseRelay | undefined;

/** Routes this thread's `chdb:` opens through `relay` (undefined: open the engine here again). */
export function setClickHouseRelay(relay: ClickHouseRelay | undefined): void {
  relayInThread = relay;
}

/**
 * The embedded engine's transport for `config` (a `chdb:` URL), without the retrying layer or
 * migrations: what a relay serves to another thread. Closing it releases this thread's reference.
 */
export function openChdbTransport(config: ClickHouseConfig): ClickHouseTransport {
  if (!config.url.startsWith('chdb:')) throw new ConfigError(`clickhouse.url: only embedded chDB is relayed between threads (a server is opened by each thread); got ${config.url}`);
  const { client, rawInsert, release } = openChdb(config.url.slice('chdb:'.length));
  return clientTransport(client, config.database, release, rawInsert);
}

export interface OpenClickHouseOptions {
  /** Migrations to apply (default: all of streamrec's). */
  readonly migrations?: readonly Migration[];
}

/**
 * Opens ClickHouse from config: `chdb:<dir>` (embedded, the default), `chdb::memory:`, or
 * `http(s)://host:port` (a server). Creates the database and applies pending migrations.
 */
export async function openClickHouse(config: ClickHouseConfig, options: OpenClickHouseOptions = {}): Promise<ClickHouse> {
  const policy: RetryPolicy = { retries: config.insertRetries, initialDelayMs: config.retryBaseMs };
  let ch: ClickHouse;
  if (config.url.startsWith('chdb:')) {
    const dataPath = config.url.slice('chdb:'.length);
    if (dataPath.length === 0) throw new ConfigError('clickhouse.url: chdb: needs a directory (chdb:./data) or chdb::memory:');
    if (relayInThread) {
      // A worker thread: the embedded engine is the main thread's (one per process and directory).
      ch = new ClickHouse(relayInThread.transport(config), 'chdb', config.url, config.database, policy);
    } else {
      const { client, rawInsert, release } = openChdb(dataPath);
      ch = new ClickHouse(clientTransport(client, config.database, release, rawInsert), 'chdb', config.url, config.database, policy);
    }
  } else {
    const client = createClient({ url: config.url, username: config.username, password: config.password });
    ch = new ClickHouse(clientTransport(client, config.database, () => client.close()), 'server', config.url, config.database, policy);
  }
  try {
    await ch.command(`CREATE DATABASE IF NOT EXISTS \`${config.database}\``);
    await runMigrations(ch, options.migrations ?? MIGRATIONS);
  } catch (error) {
    await ch.close();
    throw error;
  }
  log.debug({ url: config.url, database: config.database }, 'clickhouse ready');
  return ch;
}
