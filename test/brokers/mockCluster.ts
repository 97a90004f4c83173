import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { KafkaError } from '../../errors';
import { packageRoot } from '../../version';

/**
 * librdkafka's mock cluster (a Kafka-protocol broker on TCP, from Debian's `kcat` package),
 * for tests, benchmarks and the local demo where no real Kafka runs. Topics are auto-created
 * with 4 partitions; admin createTopics and transactions are not supported; data is in memory.
 */
export interface MockCluster {
  readonly brokers: string[];
  readonly pid: number;
  stop(): Promise<void>;
}

export interface MockClusterOptions {
  readonly brokers?: number;
  readonly timeoutMs?: number;
  /**
   * Topics to create up front with these partition counts. Needs a C compiler and
   * librdkafka-dev (Debian); the helper in native/mock_cluster.c is compiled once and cached.
   */
  readonly topics?: ReadonlyArray<{ readonly name: string; readonly partitions: number }>;
}

/** Compiles native/mock_cluster.c into the cache (once per source version) and returns its path. */
function mockClusterBinary(): string {
  const source = path.join(packageRoot(), 'test', 'brokers', 'native', 'mock_cluster.c');
  const code = readFileSync(source);
  const dir = path.join(process.env.STREAMREC_CACHE_DIR ?? path.join(homedir(), '.cache', 'streamrec'), 'bin');
  const binary = path.join(dir, `mock_cluster-${createHash('sha256').update(code).digest('hex').slice(0, 12)}`);
  if (existsSync(binary)) return binary;
  mkdirSync(dir, { recursive: true });
  const tmp = `${binary}.${process.pid}.tmp`;
  const cc = spawnSync('cc', ['-O2', '-o', tmp, source, '-lrdkafka'], { encoding: 'utf8' });
  if (cc.status !== 0) {
    throw new KafkaError(`cannot build the mock cluster helper (needs cc and Debian package librdkafka-dev): ${cc.stderr || cc.error?.message}`);
  }
  renameSync(tmp, binary);
  return binary;
}

export async function startMockCluster(options: MockClusterOptions = {}): Promise<MockCluster> {
  const count = options.brokers ?? 1;
  let child: ChildProcess;
  const native = options.topics !== undefined && options.topics.length > 0;
  try {
    child = native
      ? spawn(mockClusterBinary(), [String(count), ...(options.topics ?? []).map((t) => `${t.name}:${t.partitions}`)], {
          stdio: ['pipe', 'pipe', 'pipe'],
        })
      : spawn('kcat', ['-b', '127.0.0.1:1', '-X', `test.mock.num.brokers=${count}`, '-C', '-t', '__streamrec_keepalive', '-o', 'end', '-q'], {
          stdio: ['ignore', 'ignore', 'pipe'],
        });
  } catch (cause) {
    throw new KafkaError('cannot start the mock cluster (install Debian package kcat)', { cause });
  }
  const brokers = await new Promise<string[]>((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new KafkaError(`kcat mock cluster did not report its address within ${options.timeoutMs ?? 10_000} ms: ${text.slice(0, 300)}`));
    }, options.timeoutMs ?? 10_000);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(new KafkaError(`cannot start kcat (install Debian package kcat): ${error.message}`, { cause: error }));
    });
    const onData = (data: Buffer): void => {
      text += data.toString();
      const match = /(?:replaced with|BOOTSTRAP) ([0-9.:,]+)/.exec(text);
      if (match) {
        clearTimeout(timer);
        resolve((match[1] as string).split(',').filter((b) => b.length > 0));
      }
    };
    child.stderr?.on('data', onData);
    child.stdout?.on('data', onData);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new KafkaError(`kcat exited with code ${code} before the mock cluster was ready: ${text.slice(0, 300)}`));
    });
  });
  child.stderr?.resume();
  child.stdout?.resume();
  return {
    brokers,
    pid: child.pid ?? -1,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        const force = setTimeout(() => child.kill('SIGKILL'), 3000);
        child.once('exit', () => {
          clearTimeout(force);
          resolve();
        });
        child.kill('SIGTERM');
      }),
  };
}
