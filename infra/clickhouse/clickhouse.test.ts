import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { StoreError } from '../../errors';
import { ClickHouseConfig } from '../../schemas/config';
import { INTERACTION_SHAPE } from './archive';
import { IngestArchive, MIGRATIONS, openClickHouse, refusesRowContent, runMigrations, writeIsolating, type ClickHouse, type InteractionRow } from './index';

describe('INTERACTION_SHAPE', () => {
  it('reads every field of a row, each under its own column', () => {
    const row: InteractionRow = {
      event_id: 'e', user_id: 'u', item_id: 'i', type: 'view', value: 1.5, ts: 2, session_index: 3, source: 's', context: '{"a":1}',
      topic: 't', partition: 4, offset: 5, ingested_at: 6,
    };
    const values = INTERACTION_SHAPE.values(row);
    expect(values).toHaveLength(INTERACTION_SHAPE.columns.length);
    expect(Object.fromEntries(INTERACTION_SHAPE.columns.map((c, i) => [c, values[i]]))).toEqual(row);
  });
});

/**
 * Runs against embedded chDB always, and against a ClickHouse server when CLICKHOUSE_URL is set
 * (e.g. http://127.0.0.1:8123). Says which one it skipped.
 */
const targets: Array<{ name: string; url: string }> = [
  { name: 'embedded chDB', url: `chdb:${mkdtempSync(path.join(tmpdir(), 'streamrec-ch-'))}` },
];
if (process.env.CLICKHOUSE_URL) targets.push({ name: `server ${process.env.CLICKHOUSE_URL}`, url: process.env.CLICKHOUSE_URL });
else process.stderr.write('[streamrec tests] ClickHouse server contract: skipped (set CLICKHOUSE_URL to run it)\n');

for (const target of targets) {
  describe(`ClickHouse layer on ${target.name}`, () => {
    let ch: ClickHouse;
    const database = `test_${Math.random().toString(36).slice(2, 8)}`;
    beforeAll(async () => {
      ch = await openClickHouse(ClickHouseConfig.parse({ url: target.url, database, insertRetries: 1, retryBaseMs: 1 }));
    });
    afterAll(async () => {
      await ch.command(`DROP DATABASE IF EXISTS \`${database}\``);
      await ch.close();
    });

    it('applies every migration once and records it', async () => {
      const rows = await ch.query<{ version: number }>(`SELECT version FROM ${ch.table('schema_migrations')} FINAL ORDER BY version`);
      expect(rows.map((r) => Number(r.version))).toEqual(MIGRATIONS.map((m) => m.version));
      expect(await runMigrations(ch, MIGRATIONS)).toBe(0);
    });

    it('upgrades a database made before the text prior columns without losing its rows (migrations 3 and 4)', async () => {
      const old = await openClickHouse(ClickHouseConfig.parse({ url: target.url, database: `${database}_v2` }), { migrations: MIGRATIONS.filter((m) => m.version <= 2) });
      try {
        const row = { run_id: 'r', model_version: 'm', split: 'test', metric: 'recall', k: 10, value: 0.1, users_evaluated: 5, exclude_history: 0, epoch: 3, evaluated_at: Date.UTC(2026, 0, 1) };
        await old.insert('evaluation_results', [row]);
        expect(await runMigrations(old, MIGRATIONS)).toBe(MIGRATIONS.length - 2);
        // Fused rows of the same model version sit beside the old one instead of replacing it, one per pooling.
        await old.insert('evaluation_results', [{ ...row, value: 0.12, text_prior_weight: 0.5, text_prior_last: 5, text_prior_pooling: 'mean' }]);
        await old.insert('evaluation_results', [{ ...row, value: 0.13, text_prior_weight: 0.5, text_prior_last: 5, text_prior_pooling: 'max' }]);
        const rows = await old.query<{ value: number; w: number; last: number; pooling: string }>(
          `SELECT value, text_prior_weight AS w, text_prior_last AS last, text_prior_pooling AS pooling FROM ${old.table('evaluation_results')} FINAL ORDER BY value`,
        );
        expect(rows).toEqual([
          { value: 0.1, w: 0, last: 0, pooling: '' },
          { value: 0.12, w: 0.5, last: 5, pooling: 'mean' },
          { value: 0.13, w: 0.5, last: 5, pooling: 'max' },
        ]);
      } finally {
        await old.command(`DROP DATABASE IF EXISTS \`${database}_v2\``);
        await old.close();
      }
    });

    it('the interactions shape names exactly the table\'s columns', async () => {
      const columns = await ch.query<{ name: string }>(`SELECT name FROM system.columns WHERE database = {db:String} AND table = 'interactions'`, { db: database });
      expect(columns.map((c) => c.name).sort()).toEqual([...INTERACTION_SHAPE.columns].sort());
    });

    it('refuses an applied migration whose statements changed', async () => {
      const edited = MIGRATIONS.map((m, i) => (i === 0 ? { ...m, statements: [...m.statements, 'SELECT 1'] } : m));
      await expect(runMigrations(ch, edited)).rejects.toThrow(/must not change/);
    });

    it('archives interactions, items and dead letters, and re-inserts collapse under FINAL', async () => {
      const archive = new IngestArchive(ch);
      const row = {
        event_id: 'e1', user_id: 'u1', item_id: 'i1', type: 'view', value: null, ts: Date.UTC(2024, 0, 1), session_index: 0,
        source: '', context: '', topic: 'interactions', partition: 0, offset: 5, ingested_at: Date.UTC(2024, 0, 2),
      };
      await archive.insertInteractions([row, { ...row, event_id: 'e2', offset: 6 }]);
      await archive.insertInteractions([row]); // redelivered after a crash
      const [count] = await ch.query<{ n: string; exact: string }>(
        `SELECT count() AS n, (SELECT count() FROM ${ch.table('interactions')} FINAL) AS exact FROM ${ch.table('interactions')}`,
      );
      expect(Number(count?.n)).toBe(3);
      expect(Number(count?.exact)).toBe(2);
      const [back] = await ch.query<{ ms: string }>(`SELECT toUnixTimestamp64Milli(ts) AS ms FROM ${ch.table('interactions')} WHERE event_id = 'e1' LIMIT 1`);
      expect(Number(back?.ms)).toBe(Date.UTC(2024, 0, 1));

      await archive.insertItems([
        { item_id: 'i1', ts: 1, title: 'old', brand: '', categories: [], description: '', features: [], meta: '', topic: 'catalog', partition: 0, offset: 1, ingested_at: 1 },
        { item_id: 'i1', ts: 2, title: 'new', brand: 'b', categories: ['c'], description: '', features: [], meta: '', topic: 'catalog', partition: 0, offset: 2, ingested_at: 2 },
      ]);
      const items = await ch.query<{ title: string }>(`SELECT title FROM ${ch.table('items')} FINAL`);
      expect(items).toEqual([{ title: 'new' }]);
      // Rebuilds read the catalog back as events: the latest version of each item.
      expect(await archive.readItems()).toEqual([{ itemId: 'i1', ts: 2, title: 'new', brand: 'b', categories: ['c'] }]);

      const payload = Buffer.from([0x7b, 0xff]);
      await archive.insertDeadLetters([
        {
          payload: payload.toString('base64'), payloadBytes: 2, origin: { topic: 'interactions', partition: 1, offset: '9', key: 'u1' },
          error: { code: 'invalid_json', message: 'message value is not valid UTF-8', path: null }, failedAt: 3,
        },
      ]);
      const dead = await ch.query<{ code: string; payload: string; message_key: string }>(
        `SELECT code, base64Decode(payload_base64) = unhex('7BFF') AS payload, message_key FROM ${ch.table('dead_letters')}`,
      );
      expect(dead).toEqual([{ code: 'invalid_json', payload: expect.anything(), message_key: 'u1' }]);
      expect(Number(dead[0]?.payload)).toBe(1);
    });

    it('passes insert settings through: an archive block keeps its redelivered row until a merge, FINAL collapses it', async () => {
      const archive = new IngestArchive(ch);
      const row = {
        event_id: 'twice', user_id: 'u2', item_id: 'i2', type: 'click', value: null, ts: Date.UTC(2024, 1, 1), session_index: 0,
        source: '', context: '', topic: 'interactions', partition: 1, offset: 7, ingested_at: Date.UTC(2024, 1, 2),
      };
      // optimize_on_insert = 0 (ARCHIVE_INSERT_SETTINGS): the insert does not collapse the block itself.
      await archive.insertInteractions([row, { ...row, ingested_at: row.ingested_at + 1 }]);
      const where = `WHERE event_id = 'twice'`;
      const [count] = await ch.query<{ n: string; exact: string }>(
        `SELECT count() AS n, (SELECT count() FROM ${ch.table('interactions')} FINAL ${where}) AS exact FROM ${ch.table('interactions')} ${where}`,
      );
      expect(Number(count?.n)).toBe(2);
      expect(Number(count?.exact)).toBe(1);
    });

    it('archives strings with tabs, newlines, backslashes and non-Latin text unchanged', async () => {
      const archive = new IngestArchive(ch);
      const nasty = 'a\tb\nc\\d\re\u0000f 東京 🚀 "q" \'s\'';
      await archive.insertInteractions([
        {
          event_id: 'nasty-1', user_id: nasty, item_id: 'i\\n', type: 'rating', value: 4.5, ts: 1, session_index: 3,
          source: 'src\t1', context: JSON.stringify({ note: 'line1\nline2' }), topic: 'interactions', partition: 2, offset: 9, ingested_at: 2,
        },
      ]);
      const [row] = await ch.query<Record<string, unknown>>(
        `SELECT user_id, item_id, value, source, context, session_index FROM ${ch.table('interactions')} WHERE event_id = 'nasty-1'`,
      );
      expect(row).toEqual({ user_id: nasty, item_id: 'i\\n', value: 4.5, source: 'src\t1', context: JSON.stringify({ note: 'line1\nline2' }), session_index: 3 });
    });

    it('isolates the rows it refuses for their content (a lone surrogate) and writes the rest; a missing table is no row\'s fault', async () => {
      const archive = new IngestArchive(ch);
      const rows: InteractionRow[] = Array.from({ length: 12 }, (_, i) => ({
        event_id: `iso-${i}`, user_id: i === 3 || i === 10 ? `bad\ud800${i}` : `u${i}`, item_id: 'i', type: 'view', value: null, ts: 1, session_index: 0,
        source: '', context: '', topic: 'interactions', partition: 0, offset: i, ingested_at: 2,
      }));
      const write = (batch: readonly InteractionRow[]) => archive.insertInteractions(batch);
      await expect(write(rows)).rejects.toMatchObject({ context: { clickhouseCode: 25, rowContent: true } });
      const refused = await writeIsolating(write, rows, refusesRowContent);
      expect(refused.map((r) => r.index)).toEqual([3, 10]);
      expect(refused[0]!.error.message).toMatch(/surrogate/);
      const stored = await ch.query<{ event_id: string }>(`SELECT event_id FROM ${ch.table('interactions')} FINAL WHERE event_id LIKE 'iso-%' ORDER BY offset`);
      expect(stored.map((r) => r.event_id)).toEqual(rows.filter((_, i) => i !== 3 && i !== 10).map((r) => r.event_id));

      const missing = (batch: readonly InteractionRow[]) => ch.insert('no_such_table', batch);
      await expect(writeIsolating(missing, rows.slice(0, 2), refusesRowContent)).rejects.toThrow(/no_such_table/);
    });

    it('reports a bad query as a StoreError with the statement', async () => {
      await expect(ch.query('SELEC 1')).rejects.toBeInstanceOf(StoreError);
      await expect(ch.query('SELEC 1')).rejects.toThrow(/query failed: SELEC 1/);
    });
  });
}

describe('openClickHouse', () => {
  it('rejects a second embedded data directory in the same process with a clear message', async () => {
    const first = await openClickHouse(ClickHouseConfig.parse({ url: `chdb:${mkdtempSync(path.join(tmpdir(), 'streamrec-ch-'))}` }));
    try {
      await expect(openClickHouse(ClickHouseConfig.parse({ url: `chdb:${mkdtempSync(path.join(tmpdir(), 'streamrec-ch-'))}` }))).rejects.toThrow(
        /one data directory per process/,
      );
    } finally {
      await first.close();
    }
  });
});
