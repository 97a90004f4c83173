import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ConfigError } from '../errors';
import { StreamrecConfig } from './config';
import { configFromEnv, loadConfig } from './loadConfig';

function tempFile(content: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'streamrec-config-'));
  const file = path.join(dir, 'config.json');
  writeFileSync(file, content);
  return file;
}

describe('loadConfig', () => {
  it('fills every default when no source is given', () => {
    const config = loadConfig(StreamrecConfig);
    expect(config.ingest.history.maxLength).toBe(50);
    expect(config.ingest.history.sessionGapMs).toBe(30 * 60_000);
    expect(config.clickhouse.url).toBe('chdb:.streamrec/clickhouse');
  });

  it('applies file < env < command line, key by key', () => {
    const file = tempFile(
      JSON.stringify({ ingest: { groupId: 'from-file', history: { maxLength: 10, sessionGapMs: 1000 } }, kafka: { clientId: 'file' } }),
    );
    const env = { STREAMREC__INGEST__HISTORY__MAX_LENGTH: '20', STREAMREC__KAFKA__CLIENT_ID: 'env', OTHER: 'ignored' };
    const config = loadConfig(StreamrecConfig, { file, env, overrides: { ingest: { history: { maxLength: 30 } } } });
    expect(config.ingest.history.maxLength).toBe(30); // cli beats env and file
    expect(config.kafka.clientId).toBe('env'); // env beats file
    expect(config.ingest.groupId).toBe('from-file'); // file beats default
    expect(config.ingest.history.sessionGapMs).toBe(1000); // siblings in the file survive the merge
  });

  it('maps SCREAMING_SNAKE env names to camelCase paths and parses JSON values', () => {
    expect(configFromEnv({ STREAMREC__KAFKA__BROKERS: '["a:1","b:2"]', STREAMREC__INGEST__ARCHIVE: 'false' })).toEqual({
      kafka: { brokers: ['a:1', 'b:2'] },
      ingest: { archive: false },
    });
  });

  it('rejects unknown keys and bad values, naming the key, expectation and received value', () => {
    const file = tempFile(JSON.stringify({ ingest: { histroy: { maxLength: 5 } } }));
    expect(() => loadConfig(StreamrecConfig, { file })).toThrow(/unknown key\(s\) ingest\.histroy/);
    try {
      loadConfig(StreamrecConfig, { env: { STREAMREC__INGEST__HISTORY__MAX_LENGTH: '"many"' } });
      throw new Error('expected a ConfigError');
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as Error).message).toMatch(/ingest\.history\.maxLength: .*number.*\(got string "many"\)/);
    }
  });

  it('rejects a config file that is not a JSON object', () => {
    expect(() => loadConfig(StreamrecConfig, { file: tempFile('[1,2]') })).toThrow(/must hold a JSON object, got array\(2\)/);
    expect(() => loadConfig(StreamrecConfig, { file: tempFile('{') })).toThrow(/not valid JSON/);
  });
});
