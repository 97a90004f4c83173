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
 * The ClickHouse layer: one `@clickhouse/client` client, either on embedded chDB (a data
 * directory, no server) or on a server URL, with the streamrec database migrated.
 */
export class ClickHouse {
  private closed = false;

  constructor(
    readonly client: ClickHouseClient,
    readonly kind: ClickHouseKind,
    readonly url: string,
    readonly database: string,
    private readonly insertPolicy: RetryPolicy,
    private readonly release: () => Promise<void>,
    /** Embedded chDB's direct insert: the payload bytes go to its parser without a stream. */
    private readonly rawInsert?: RawInsert,
  ) {}

  /** Fully qualified, quoted table name. */
  table(name: string): string {
    return `\`${this.database}\`.\`${name}\``;
  }

  async command(query: string, params?: Record<string, unknown>): Promise<void> {
    try {
      await this.client.command({ query, ...(params ? { query_params: params } : {}) });
    } catch (cause) {
      throw toStoreError(cause, `command failed: ${query.slice(0, 120)}`);
    }
  }

  async query<T>(query: string, params?: Record<string, unknown>): Promise<T[]> {
    try {
      const result = await this.client.query({ query, format: 'JSONEachRow', ...(params ? { query_params: params } : {}) });
      return (await result.json()) as T[];
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
    const { shape, settings } = options;
    const policy = this.insertPolicy;
    await retry(async () => {
      try {
        const plainName = `${this.database}.${table}`; // chDB's raw insert takes unquoted names only
        if (this.rawInsert && /^\w+\.\w+$/.test(plainName)) {
          const columns = shape?.columns ?? Object.keys(rows[0] as object);
          await this.rawInsert(plainName, columns, jsonCompactEachRow(rows, columns, shape), settings);
        } else {
          await this.client.insert({
            table: this.table(table),
            values: rows as unknown as object[],
            format: 'JSONEachRow',
            ...(settings ? { clickhouse_settings: settings } : {}),
          });
        }
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
    await this.release();
  }
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

function toStoreError(cause: unknown, message: string): StoreError {
  const text = cause instanceof Error ? cause.message : String(cause);
  const code = (cause as { code?: unknown }).code;
  return new StoreError(`${message}: ${text}`, { cause, retriable: TRANSIENT.test(text) || code === 'ECONNREFUSED' });
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
    const { client, rawInsert, release } = openChdb(dataPath);
    ch = new ClickHouse(client, 'chdb', config.url, config.database, policy, release, rawInsert);
  } else {
    const client = createClient({ url: config.url, username: config.username, password: config.password });
    ch = new ClickHouse(client, 'server', config.url, config.database, policy, () => client.close());
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
