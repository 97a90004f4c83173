import { createHash } from 'node:crypto';
import { StoreError } from '../../errors';
import type { ClickHouse } from './client';

/**
 * Versioned DDL. Each migration is a list of statements with `{db}` standing for the database.
 * Applied migrations are recorded in `schema_migrations` with a checksum; editing an applied
 * migration is an error (add a new one instead).
 */
export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly statements: readonly string[];
}

function checksum(m: Migration): string {
  return createHash('sha256').update(m.statements.join('\n;\n')).digest('hex').slice(0, 16);
}

export async function runMigrations(ch: ClickHouse, migrations: readonly Migration[]): Promise<number> {
  await ch.command(
    `CREATE TABLE IF NOT EXISTS ${ch.table('schema_migrations')} (version UInt32, name String, checksum String, applied_at DateTime64(3, 'UTC')) ENGINE = ReplacingMergeTree ORDER BY version`,
  );
  const applied = new Map(
    (await ch.query<{ version: number; checksum: string; name: string }>(`SELECT version, checksum, name FROM ${ch.table('schema_migrations')} FINAL`)).map(
      (r) => [Number(r.version), r],
    ),
  );
  let count = 0;
  for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
    const done = applied.get(m.version);
    if (done) {
      if (done.checksum !== checksum(m)) {
        throw new StoreError(
          `migration ${m.version} (${m.name}) was applied with checksum ${done.checksum} but the code has ${checksum(m)}: applied migrations must not change; add a new one`,
        );
      }
      continue;
    }
    for (const statement of m.statements) await ch.command(statement.replaceAll('{db}', `\`${ch.database}\``));
    await ch.insert('schema_migrations', [{ version: m.version, name: m.name, checksum: checksum(m), applied_at: Date.now() }]);
    count++;
  }
  return count;
}
