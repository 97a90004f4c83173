/**
 * An open-loop HTTP load generator for the benchmarks: GET requests at a fixed offered rate,
 * whatever the server's speed (autocannon's rate limit is closed-loop: each connection sends as
 * fast as it can until its quota for the second is used, then waits for the next second, so its
 * latencies are those of a saturated server in bursts).
 *
 * Requests become due at `rate` per second, evenly spaced; each tick of the generator (about
 * every millisecond) sends the due ones on idle keep-alive connections, oldest first. A request's
 * latency runs from the tick that found it due to the end of its response: time spent waiting
 * for a free connection (the server being slower than the rate) counts, so a slow server cannot
 * hide behind fewer requests (no coordinated omission). Plain sockets and a minimal HTTP/1.1
 * reader (status line, content-length bodies), so the generator costs the machine little.
 *
 * The run starts with `warmUpSeconds` at the same rate whose answers are not measured (their
 * errors still count): the generator's own code is compiled and its connections opened then.
 * Measured without it, a run's first ~250 ms (a fresh process, 32 new connections) held up to
 * ~350 requests over 5 ms against a trivial server, on their own more than the 1% a 10 s run's
 * p99 is made of.
 */
import { fork } from 'node:child_process';
import net from 'node:net';

export interface OpenLoopOptions {
  readonly host: string;
  readonly port: number;
  /** Path of the i-th request. */
  readonly path: (i: number) => string;
  /** Offered requests per second. */
  readonly rate: number;
  readonly seconds: number;
  /** Keep-alive connections (more than the rate needs, so that waiting means a slow server). */
  readonly connections: number;
  /** A request with no answer after this long counts as an error and its connection is replaced. */
  readonly timeoutMs?: number;
  /** Seconds at the rate before the measured `seconds`, answers not measured (default 1). */
  readonly warmUpSeconds?: number;
}

export interface OpenLoopResult {
  /** Latencies of the measured 2xx answers, ms, ascending. */
  readonly latencies: Float64Array;
  /** Requests due in the measured seconds (the warm-up's not counted). */
  readonly offered: number;
  readonly completed: number;
  readonly errors: number;
  readonly non2xx: number;
  /** Seconds from the end of the warm-up to the last answer. */
  readonly seconds: number;
  /** Requests sent during the warm-up. */
  readonly warmUpRequests: number;
}

interface Pending {
  readonly due: number;
  readonly index: number;
}

class Connection {
  private socket: net.Socket;
  private buffer: Buffer = Buffer.alloc(0);
  private current: (Pending & { sentAt: number }) | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly options: OpenLoopOptions,
    private readonly done: (request: Pending, status: number) => void,
    private readonly failed: (request: Pending | undefined) => void,
  ) {
    this.socket = this.connect();
  }

  get idle(): boolean {
    return this.current === undefined;
  }

  send(request: Pending): void {
    this.current = { ...request, sentAt: performance.now() };
    this.socket.write(`GET ${this.options.path(request.index)} HTTP/1.1\r\nHost: ${this.options.host}:${this.options.port}\r\nConnection: keep-alive\r\n\r\n`);
    this.timer = setTimeout(() => this.fail(), this.options.timeoutMs ?? 10_000);
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.socket.destroy();
  }

  private connect(): net.Socket {
    const socket = net.connect({ host: this.options.host, port: this.options.port });
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.read(chunk));
    socket.on('error', () => this.fail());
    socket.on('close', () => {
      if (this.socket === socket && this.current) this.fail();
    });
    return socket;
  }

  /** The request in flight failed: count it and start over on a new socket. */
  private fail(): void {
    const request = this.current;
    this.current = undefined;
    if (this.timer) clearTimeout(this.timer);
    this.buffer = Buffer.alloc(0);
    const old = this.socket;
    this.socket = this.connect();
    old.destroy();
    this.failed(request);
  }

  private read(chunk: Buffer): void {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    const end = this.buffer.indexOf('\r\n\r\n');
    if (end < 0) return;
    const head = this.buffer.toString('latin1', 0, end);
    const length = /\r\ncontent-length:\s*(\d+)/i.exec(head);
    const status = Number(head.slice(9, 12));
    if (!length) return this.fail(); // chunked or unknown framing: not what the server sends
    const total = end + 4 + Number(length[1]);
    if (this.buffer.length < total) return;
    this.buffer = this.buffer.subarray(total);
    const request = this.current;
    this.current = undefined;
    if (this.timer) clearTimeout(this.timer);
    if (request) this.done(request, status);
  }
}

/** Runs the load for `seconds` and waits for the answers still in flight (up to the timeout). */
export async function openLoop(options: OpenLoopOptions): Promise<OpenLoopResult> {
  const latencies: number[] = [];
  let errors = 0;
  let non2xx = 0;
  let completed = 0;
  /** Measured requests answered or failed. */
  let settled = 0;
  const queue: Pending[] = [];
  let dispatch = (): void => undefined;
  const connections = Array.from(
    { length: options.connections },
    () =>
      new Connection(
        options,
        (request, status) => {
          if (request.index < warmUpRequests) {
            if (status < 200 || status >= 300) errors++;
          } else {
            settled++;
            completed++;
            if (status >= 200 && status < 300) latencies.push(performance.now() - request.due);
            else non2xx++;
          }
          dispatch();
        },
        (request) => {
          if (request) errors++;
          if (request && request.index >= warmUpRequests) settled++;
          dispatch();
        },
      ),
  );
  dispatch = () => {
    for (const c of connections) {
      if (queue.length === 0) return;
      if (c.idle) c.send(queue.shift() as Pending);
    }
  };
  const started = performance.now();
  const warmUpRequests = Math.floor(options.rate * (options.warmUpSeconds ?? 1));
  const total = warmUpRequests + Math.floor(options.rate * options.seconds);
  let offered = 0;
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const now = performance.now();
      const due = Math.min(total, Math.floor(((now - started) / 1000) * options.rate));
      while (offered < due) queue.push({ due: now, index: offered++ });
      dispatch();
      if (offered < total) setTimeout(tick, 1);
      else resolve();
    };
    tick();
  });
  const deadline = performance.now() + (options.timeoutMs ?? 10_000);
  const measured = offered - warmUpRequests;
  while (settled < measured && performance.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  const seconds = (performance.now() - started) / 1000 - warmUpRequests / options.rate;
  errors += measured - settled; // unanswered
  for (const c of connections) c.close();
  return { latencies: Float64Array.from(latencies).sort(), offered: measured, completed, errors, non2xx, seconds, warmUpRequests };
}

/**
 * Runs {@link openLoop} in a child process of its own (this file forked with `--child`), so that
 * the caller's heap (a benchmark holding datasets and models: its collections pause its event
 * loop for tens of ms) never delays reading an answer and adds to a measured latency.
 */
export function openLoopInChild(options: Omit<OpenLoopOptions, 'path'> & { readonly paths: readonly string[] }): Promise<OpenLoopResult> {
  return new Promise((resolve, reject) => {
    const child = fork(__filename, ['--child'], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    let result: OpenLoopResult | undefined;
    child.on('message', (m: { latencies: number[] } & Omit<OpenLoopResult, 'latencies'>) => {
      result = { ...m, latencies: Float64Array.from(m.latencies) };
    });
    child.on('error', reject);
    child.on('exit', (code) => (result ? resolve(result) : reject(new Error(`open-loop load generator exited with code ${code} and no result`))));
    child.send(options);
  });
}

if (process.argv[2] === '--child') {
  process.once('message', (options: Omit<OpenLoopOptions, 'path'> & { readonly paths: readonly string[] }) => {
    const { paths } = options;
    void openLoop({ ...options, path: (i) => paths[i % paths.length] as string }).then((r) => {
      process.send?.({ ...r, latencies: Array.from(r.latencies) }, () => process.exit(0));
    });
  });
}
