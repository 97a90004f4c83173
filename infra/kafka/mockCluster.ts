import { spawn, type ChildProcess } from 'node:child_process';
import { KafkaError } from '../../errors';

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

export async function startMockCluster(options: { brokers?: number; timeoutMs?: number } = {}): Promise<MockCluster> {
  const count = options.brokers ?? 1;
  let child: ChildProcess;
  try {
    child = spawn('kcat', ['-b', '127.0.0.1:1', '-X', `test.mock.num.brokers=${count}`, '-C', '-t', '__streamrec_keepalive', '-o', 'end', '-q'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
  } catch (cause) {
    throw new KafkaError('cannot start kcat (install Debian package kcat)', { cause });
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
    child.stderr?.on('data', (data: Buffer) => {
      text += data.toString();
      const match = /replaced with ([0-9.:,]+)/.exec(text);
      if (match) {
        clearTimeout(timer);
        resolve((match[1] as string).split(',').filter((b) => b.length > 0));
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new KafkaError(`kcat exited with code ${code} before the mock cluster was ready: ${text.slice(0, 300)}`));
    });
  });
  child.stderr?.resume();
  return {
    brokers,
    pid: child.pid ?? -1,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}
