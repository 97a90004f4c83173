import type { Command } from 'commander';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { ConfigError } from '../../errors';
import { parseKafkaUrl } from '../../infra/kafka';
import { withOverrides } from '../../jobs';
import { ServingCluster, servingWorkerIndex } from '../../serving/cluster';
import { startServing } from '../../serving/run';
import { commandConfig, type GlobalOptions } from '../config';
import { portFlag } from '../flags';

interface ServeFlags {
  readonly registry?: string;
  readonly histories: string;
  readonly port?: string;
  readonly host?: string;
  readonly workers?: string;
}

/** `--workers`: a whole number >= 1, or auto (one per core). */
function workersFlag(value: string): number {
  if (value === 'auto') return availableParallelism();
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 256) throw new ConfigError(`--workers: expected a whole number 1..256 or auto, got ${JSON.stringify(value)}`);
  return n;
}

/** Waits for SIGINT or SIGTERM. */
function signalled(): Promise<void> {
  return new Promise<void>((resolve) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

export function registerServe(program: Command, globals: () => GlobalOptions): void {
  program
    .command('serve')
    .description('Serve recommendations over HTTP: the live model of the registry (hot-swapped when a new one is published) over the users\' live histories')
    .option('--registry <dir|url>', 'model registry: a directory, dir:<directory> or memory: (default: modelRegistry.url)')
    .option('--histories <kafka://host:port|memory>', 'where histories come from: the changelog ingest writes (kafka://, or kafka for the configured brokers), or memory (none: stateless requests and the popular fallback)', 'kafka')
    .option('--port <n>', 'HTTP port (default: serving.port)')
    .option('--host <address>', 'interface to listen on (default: serving.host)')
    .option('--workers <n|auto>', 'server processes behind the port, each on a core of its own (default: serving.workers; auto: one per core)')
    .action(async (flags: ServeFlags) => {
      const port = flags.port === undefined ? undefined : portFlag('--port', flags.port);
      const registry = flags.registry === undefined ? undefined : /^(dir:|memory:)/.test(flags.registry) ? flags.registry : `dir:${path.resolve(flags.registry)}`;
      const config = withOverrides(commandConfig(globals()), {
        ...(registry ? { modelRegistry: { url: registry } } : {}),
        serving: { ...(port !== undefined ? { port } : {}), ...(flags.host ? { host: flags.host } : {}), ...(flags.workers !== undefined ? { workers: workersFlag(flags.workers) } : {}) },
      });
      let histories: Parameters<typeof startServing>[1]['histories'];
      if (flags.histories === 'memory') histories = { kind: 'memory' };
      else if (flags.histories === 'kafka') histories = { kind: 'kafka' };
      else if (flags.histories.startsWith('kafka://')) histories = { kind: 'kafka', brokers: parseKafkaUrl(flags.histories).brokers };
      else throw new ConfigError(`--histories: expected kafka://host:port, kafka or memory, got ${JSON.stringify(flags.histories)}`);
      const worker = servingWorkerIndex();
      if (worker === undefined && config.serving.workers > 1) {
        // The primary: the workers run this same command line (each sees its slot) on one port.
        const servers = await ServingCluster.start({ workers: config.serving.workers, shutdownGraceMs: config.serving.shutdownGraceMs });
        process.stdout.write(`serving on ${servers.url} (${servers.workers} workers, pids ${servers.pids.join(' ')}; histories ${flags.histories})\n`);
        await signalled();
        process.stdout.write(`stopping: no new connections; requests in flight get up to ${config.serving.shutdownGraceMs} ms to finish\n`);
        await servers.close();
        process.stdout.write('serving stopped\n');
        return;
      }
      if (worker !== undefined) {
        // A worker stops when its primary says (serving/cluster.ts) and prints nothing of its own;
        // one that cannot start says why and exits (its IPC channel would keep it alive), which fails the primary's start.
        await startServing(config, { histories }).catch((error: unknown) => {
          process.stderr.write(`streamrec serve worker ${worker}: ${error instanceof Error ? error.message : String(error)}\n`);
          process.exit(1);
        });
        return;
      }
      const runtime = await startServing(config, { histories });
      process.stdout.write(`serving on ${runtime.url} (model ${runtime.models.current ? `version ${runtime.models.current.published.version}` : 'none published yet'}; histories ${flags.histories})\n`);
      await signalled();
      process.stdout.write(`stopping: no new connections; requests in flight get up to ${config.serving.shutdownGraceMs} ms to finish\n`);
      await runtime.close();
      process.stdout.write('serving stopped\n');
    });
}
