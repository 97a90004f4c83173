import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse } from 'yaml';
import { loadAppConfig } from '../jobs';
import { buildProgram } from './main';

const ROOT = path.resolve(__dirname, '..');

interface Service {
  readonly build?: unknown;
  readonly image?: string;
  readonly command?: string[];
  readonly environment?: Record<string, string>;
  readonly ports?: string[];
  readonly volumes?: string[];
  readonly healthcheck?: { readonly test: string[] };
  readonly profiles?: string[];
}

/**
 * docker-compose.yml as the CLI and the config schema read it (Docker is not needed): every
 * streamrec role runs a command the CLI has, with options it knows; its STREAMREC__* environment is
 * a valid config; published ports are the ones it listens on; the roles that share the model
 * registry and the artifacts see the same volume at the paths their config names.
 */
describe('docker-compose.yml', () => {
  const compose = parse(readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8')) as { services: Record<string, Service>; volumes: Record<string, unknown> };
  const roles = Object.entries(compose.services).filter(([, s]) => s.image === 'streamrec:local');
  const program = buildProgram();

  it('runs the three roles (and a tools service) from the image built from this repository, with health checks', () => {
    expect(roles.map(([name]) => name).sort()).toEqual(['ingest', 'serve', 'tools', 'trainer']);
    expect(roles.filter(([, s]) => s.build !== undefined).map(([name]) => name)).toEqual(['ingest']);
    for (const [name, s] of roles) if (!s.profiles) expect({ name, healthcheck: Array.isArray(s.healthcheck?.test) }).toEqual({ name, healthcheck: true });
    expect(readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8')).toMatch(/ENTRYPOINT \["node", "bin\/streamrec\.js"\]/);
  });

  it.each(['ingest', 'trainer', 'serve'])("%s: a CLI command with options it knows", (name) => {
    const command = compose.services[name]?.command ?? [];
    const sub = program.commands.find((c) => c.name() === command[0]);
    expect(sub?.name()).toBe(command[0]);
    const known = new Set(sub?.options.flatMap((o) => [o.long, o.short]).filter(Boolean));
    for (const arg of command.slice(1)) if (arg.startsWith('-')) expect({ name, option: arg, known: known.has(arg) }).toEqual({ name, option: arg, known: true });
    // Parsed as the CLI parses it (without running it): nothing left over, and every option that
    // takes a value got one (not the next flag).
    const parsed = sub?.parseOptions(command.slice(1));
    expect({ name, operands: parsed?.operands, unknown: parsed?.unknown }).toEqual({ name, operands: [], unknown: [] });
    for (const option of sub?.options ?? []) {
      const value = sub?.getOptionValue(option.attributeName()) as unknown;
      if (option.required && command.includes(option.long as string)) expect({ name, option: option.long, value: typeof value === 'string' && !value.startsWith('-') }).toEqual({ name, option: option.long, value: true });
    }
  });

  it.each(['ingest', 'trainer', 'serve', 'tools'])('%s: its environment is a valid config', (name) => {
    const env = compose.services[name]?.environment ?? {};
    for (const key of Object.keys(env)) expect(key).toMatch(/^STREAMREC__[A-Z0-9_]+(__[A-Z0-9_]+)*$/);
    const config = loadAppConfig({ env });
    if (env.STREAMREC__KAFKA__BROKERS) expect(config.kafka.brokers).toEqual(['kafka:29092']);
    if (env.STREAMREC__MODEL_REGISTRY__URL) expect(config.modelRegistry.url).toBe('dir:/data/model-registry');
    // The stores named in the config lie on the shared volume.
    if (env.STREAMREC__ARTIFACTS__DIR) {
      expect(compose.services[name]?.volumes).toContain('streamrec-data:/data');
      expect(config.artifacts.dir.startsWith('/data/')).toBe(true);
    }
  });

  it('publishes the ports the roles listen on', () => {
    const serve = compose.services.serve as Service;
    const port = Number(serve.command?.[serve.command.indexOf('--port') + 1]);
    expect(serve.ports).toEqual([`${port}:${port}`]);
    expect(serve.command?.[serve.command.indexOf('--host') + 1]).toBe('0.0.0.0');
    expect(serve.healthcheck?.test.join(' ')).toContain(`localhost:${port}/healthz`);
    for (const name of ['ingest', 'trainer']) {
      const role = compose.services[name] as Service;
      const metrics = Number(role.command?.[role.command.indexOf('--metrics-port') + 1]);
      expect({ name, ports: role.ports }).toEqual({ name, ports: [`${metrics}:${metrics}`] });
    }
    expect(Object.keys(compose.volumes)).toEqual(expect.arrayContaining(['streamrec-data', 'clickhouse-data']));
  });

  it("checks the trainer's health by the age of the heartbeat file its command writes", () => {
    const trainer = compose.services.trainer as Service;
    const file = trainer.command?.[trainer.command.indexOf('--heartbeat-file') + 1] as string;
    expect(file).toMatch(/^\//);
    const [kind, bin, flag, script] = trainer.healthcheck?.test as string[];
    expect([kind, bin, flag]).toEqual(['CMD', 'node', '-e']);
    expect(script).toContain(file);
    // The check itself, on a file here: fresh passes, five minutes old fails, missing fails.
    const dir = mkdtempSync(path.join(tmpdir(), 'streamrec-heartbeat-'));
    try {
      const here = path.join(dir, 'alive');
      const check = (): number | null => spawnSync('node', ['-e', (script as string).split(file).join(here)]).status;
      expect(check()).not.toBe(0);
      writeFileSync(here, 'looked\n');
      expect(check()).toBe(0);
      const old = new Date(Date.now() - 301_000);
      utimesSync(here, old, old);
      expect(check()).not.toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('passes the Compose specification check (`docker compose config`, or docker-compose 1.x) where one is installed', () => {
    // `docker compose` (v2) where the plugin is there, else the standalone docker-compose (Debian's
    // 1.29, which .ci/run installs): both check the file against the Compose schema without a daemon.
    const tool = [
      ['docker', ['compose']],
      ['docker-compose', []],
    ].find(([bin, args]) => spawnSync(bin as string, [...(args as string[]), 'version'], { encoding: 'utf8' }).status === 0) as [string, string[]] | undefined;
    if (!tool) {
      if (process.env.STREAMREC_REQUIRE_COMPOSE === '1') throw new Error('STREAMREC_REQUIRE_COMPOSE=1 but neither `docker compose` nor docker-compose is installed');
      process.stderr.write('[compose] neither docker compose nor docker-compose is installed here: the Compose schema check not run\n');
      return;
    }
    const [bin, args] = tool;
    const check = spawnSync(bin, [...args, 'config', '--quiet'], { cwd: ROOT, encoding: 'utf8' });
    expect({ status: check.status, stderr: check.stderr.trim() }).toEqual({ status: 0, stderr: '' });
  });
});
