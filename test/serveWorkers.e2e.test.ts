import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { exited, runCli, spawnCli } from './cli';
import { waitFor } from './ingestHarness';
import { ChangelogHistoryStore } from '../infra/history';
import { testHistory } from '../infra/history/testing/histories';
import { testBrokers, testKafka, uniqueName } from './kafka';
import { tinyLiveConfig } from './tinyArchive';
import { writeTinyScientific } from './tinyScientific';

/**
 * `streamrec serve --workers 2` as an operator runs it: two server processes behind one port,
 * each following the history changelog itself and answering (the same answers), /metrics summing both, /admin/reload reaching both, a
 * worker killed and started again while the other answers, and a SIGTERM that stops them all.
 */

interface Answer {
  readonly status: number;
  readonly body: Record<string, unknown>;
}

/** One request on a connection of its own (no keep-alive, unless an `agent` is given), so that successive requests reach the workers in turn. */
function request(url: string, route: string, options: { method?: string; body?: unknown; headers?: Record<string, string>; agent?: http.Agent } = {}): Promise<Answer & { text: string }> {
  return new Promise((resolve, reject) => {
    const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
    const req = http.request(
      `${url}${route}`,
      { method: options.method ?? 'GET', agent: options.agent ?? false, headers: { ...(payload ? { 'content-type': 'application/json' } : {}), ...options.headers } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => {
          let body: Record<string, unknown> = {};
          try {
            body = JSON.parse(text) as Record<string, unknown>;
          } catch {
            // /metrics is text
          }
          resolve({ status: res.statusCode ?? 0, body, text });
        });
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

/** The values of `name`'s series in Prometheus text, by their `worker` label (series whose other labels match `labels`). */
function byWorker(text: string, name: string, labels = ''): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) || !line.includes(labels)) continue;
    const worker = /worker="(\d+)"/.exec(line)?.[1];
    if (worker !== undefined) out.set(worker, Number(line.slice(line.lastIndexOf(' ') + 1)));
  }
  return out;
}

/** Processes whose command line holds `text` (pgrep), other than this one. */
function processesWith(text: string): number[] {
  try {
    return execFileSync('pgrep', ['-f', text], { encoding: 'utf8' }).split('\n').filter(Boolean).map(Number).filter((pid) => pid !== process.pid);
  } catch {
    return []; // pgrep exits 1 when nothing matches
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('streamrec serve --workers', () => {
  const root = mkdtempSync(path.join(tmpdir(), 'streamrec-serve-workers-'));
  const data = writeTinyScientific(mkdtempSync(path.join(root, 'data-')));
  const config = path.join(root, 'config.json');
  const changelog = uniqueName('serve-workers-changelog');
  writeFileSync(
    config,
    JSON.stringify({
      ...tinyLiveConfig(root),
      kafka: { brokers: testBrokers() },
      ingest: { topics: { changelog } },
      // The registry poll is minutes apart: a new version reaches the workers through /admin/reload (or the directory's change notification).
      serving: { port: 0, reloadPollMs: 600_000, adminApiKey: 'sesame' },
    }),
  );
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  async function cli(args: string[]): Promise<string> {
    const { code, output } = await runCli(['--config', config, ...args], {}, 180_000);
    if (code !== 0) throw new Error(`streamrec ${args.join(' ')} exited with ${code}:\n${output.slice(-3000)}`);
    return output;
  }

  it('refuses a bad --workers and streamrec run with serving.workers above 1; fails whole when a worker cannot listen; leaves no worker behind a killed primary', async () => {
    const bad = await runCli(['--config', config, 'serve', '--histories', 'memory', '--workers', '0']);
    expect(bad.code).toBe(1);
    expect(bad.output).toContain('--workers: expected a whole number 1..256 or auto, got "0"');
    const run = await runCli(['--config', config, 'run', '--source', `memory:${data}`], { STREAMREC__SERVING__WORKERS: '2' });
    expect(run.code).toBe(1);
    expect(run.output).toContain('serving.workers: streamrec run serves from the process that ingests');
    // A port already taken: the workers cannot listen, the start fails with a reason and leaves no process behind.
    const busy = net.createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    try {
      const port = (busy.address() as net.AddressInfo).port;
      const taken = await runCli(['--config', config, 'serve', '--histories', 'memory', '--workers', '2', '--port', String(port)]);
      expect(taken.code).toBe(1);
      expect(taken.output).toMatch(/EADDRINUSE/);
      expect(taken.output).toMatch(/streamrec: serving worker \d exited \(code 1\) before it listened/);
      expect(processesWith(config)).toEqual([]);
    } finally {
      busy.close();
    }
    // A primary killed outright (no model published yet: the workers listen and answer 503): its workers end with it.
    const orphaned = spawnCli(['--config', config, 'serve', '--histories', 'memory', '--workers', '2']);
    try {
      await waitFor(() => /serving on http:\/\/\S+ \(2 workers, pids \d+ \d+/.test(orphaned.output()), 60_000, 'the workers to listen');
      const [, first, second] = /pids (\d+) (\d+)/.exec(orphaned.output()) as RegExpExecArray;
      orphaned.kill('SIGKILL');
      await waitFor(() => !alive(Number(first)) && !alive(Number(second)), 20_000, 'the workers to end with their primary');
    } finally {
      orphaned.kill('SIGKILL');
    }
  }, 120_000);

  it('answers from two processes on one port, aggregates /metrics, reloads every worker, restarts a killed one, stops them all on SIGTERM', async () => {
    await cli(['rebuild', '--dataset', data]);
    const trained = await cli(['train', '--dataset', data, '--no-clickhouse']);
    const checkpoint = /checkpoint (checkpoint-[0-9a-f]{16})/.exec(trained)?.[1] as string;
    expect(await cli(['publish', '--checkpoint', checkpoint])).toContain('as version 1');

    const ingest = new ChangelogHistoryStore({ kafka: testKafka('serve-workers-test'), topic: changelog });
    ingest.put(testHistory('u1', 1, ['ITEM0', 'ITEM6', 'ITEM12'], 10));
    await ingest.flush();
    const server = spawnCli(['--config', config, 'serve', '--histories', 'kafka', '--workers', '2'], { STREAMREC_LOG_LEVEL: 'info' });
    try {
      await waitFor(() => /serving on http:\/\/\S+ \(2 workers, pids \d+ \d+/.test(server.output()), 120_000, 'the workers to listen');
      const [, url, first, second] = /serving on (http:\/\/\S+) \(2 workers, pids (\d+) (\d+)/.exec(server.output()) as RegExpExecArray;
      const pids = [Number(first), Number(second)];

      // Connections go to the workers in turn: both answer, each its own process.
      const seen = new Map<number, number>();
      for (let i = 0; i < 8; i++) {
        const health = await request(url as string, '/healthz');
        expect(health.status).toBe(200);
        seen.set(health.body.worker as number, health.body.pid as number);
      }
      expect([...seen.keys()].sort()).toEqual([0, 1]);
      expect([...seen.values()].sort()).toEqual([...pids].sort());

      // Each worker follows the changelog: a history written before the start, and one written after, reach both.
      ingest.put(testHistory('u2', 2, ['ITEM3', 'ITEM9'], 11));
      await ingest.flush();
      await ingest.close();
      for (const [user, length] of [['u1', 3], ['u2', 2]] as const) {
        const workersWith = new Set<number>();
        await waitFor(
          async () => {
            // Both requests on one connection: the same worker answers them.
            const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
            try {
              const health = await request(url as string, '/healthz', { agent });
              const answer = await request(url as string, `/v1/users/${user}/recommendations?k=3`, { agent });
              expect(answer.status).toBe(200);
              if (answer.body.historyLength === length) workersWith.add(health.body.worker as number);
            } finally {
              agent.destroy();
            }
            return workersWith.size === 2;
          },
          30_000,
          `${user}'s history on both workers`,
        );
      }

      // Every worker gives the same answer (the same model, the same ranking).
      const ask = { method: 'POST', body: { history: ['ITEM0', 'ITEM6', 'ITEM12'], k: 5 } };
      const answers = await Promise.all(Array.from({ length: 20 }, () => request(url as string, '/v1/recommendations', ask)));
      expect(answers.map((a) => a.status)).toEqual(Array(20).fill(200));
      expect(new Set(answers.map((a) => JSON.stringify(a.body.items))).size).toBe(1);
      expect((answers[0]?.body.items as unknown[]).length).toBe(5);

      // /metrics from either worker has both, each series labelled with its worker; together they count every answer.
      for (let i = 0; i < 2; i++) {
        const metrics = (await request(url as string, '/metrics')).text;
        const answered = byWorker(metrics, 'streamrec_serving_responses_total', 'route="/v1/recommendations",status="200"');
        expect([...answered.keys()].sort()).toEqual(['0', '1']);
        expect([...answered.values()].reduce((a, b) => a + b, 0)).toBe(20);
        expect(byWorker(metrics, 'streamrec_serving_workers')).toEqual(new Map([['0', 1], ['1', 1]]));
        expect(byWorker(metrics, 'streamrec_serving_model_version')).toEqual(new Map([['0', 1], ['1', 1]]));
        expect(metrics.match(/^# TYPE streamrec_serving_responses_total counter$/gm)).toHaveLength(1);
      }

      // A new publication: /admin/reload makes every worker check; each says what it serves.
      expect(await cli(['publish', '--checkpoint', checkpoint, '--reason', 'again'])).toContain('as version 2');
      expect((await request(url as string, '/admin/reload', { method: 'POST' })).status).toBe(401);
      const reload = await request(url as string, '/admin/reload', { method: 'POST', headers: { 'x-api-key': 'sesame' } });
      expect(reload.status).toBe(200);
      const workers = reload.body.workers as Array<{ worker: number; pid: number; outcome: { kind: string }; version: number }>;
      expect(workers.map((w) => [w.worker, w.version])).toEqual([
        [0, 2],
        [1, 2],
      ]);
      for (const w of workers) expect(['swapped', 'unchanged']).toContain(w.outcome.kind);
      // One worker loaded at a time (serving.swapOneAtATime): the second began after the first ended.
      const turns = server
        .output()
        .split('\n')
        .filter((line) => line.includes('model version loaded in the load turn'))
        .map((line) => JSON.parse(line) as { time: number; worker: number; waitedMs: number; loadMs: number })
        .map((t) => ({ worker: t.worker, from: t.time - t.loadMs, to: t.time }))
        .sort((a, b) => a.from - b.from);
      expect(turns.map((t) => t.worker).sort()).toEqual([0, 1]);
      expect((turns[1]?.from ?? 0) >= (turns[0]?.to ?? 0) - 2).toBe(true);
      const after = await Promise.all(Array.from({ length: 6 }, () => request(url as string, '/v1/recommendations', ask)));
      expect(after.map((a) => (a.body.model as { version: number }).version)).toEqual(Array(6).fill(2));

      // A worker killed: the other answers meanwhile, and the primary starts it again.
      const victim = pids[0] as number;
      process.kill(victim, 'SIGKILL');
      await waitFor(() => !alive(victim), 10_000, 'the killed worker to be gone');
      for (let i = 0; i < 4; i++) expect((await request(url as string, '/v1/recommendations', ask)).status).toBe(200);
      // Until its replacement listens (a second's delay, then a start), /metrics is the survivor's, not an error.
      const during = await request(url as string, '/metrics');
      expect(during.status).toBe(200);
      expect([...byWorker(during.text, 'streamrec_serving_workers').keys()]).toEqual(['1']);
      await waitFor(() => server.output().includes('a serving worker exited; starting it again'), 10_000, 'the primary to notice');
      let replaced: number | undefined;
      await waitFor(
        async () => {
          const health = await request(url as string, '/healthz');
          const pid = health.body.pid as number;
          if (!pids.includes(pid)) replaced = pid;
          return replaced !== undefined;
        },
        120_000,
        'the worker to be back',
      );
      // The new worker loaded the live version itself.
      await waitFor(async () => byWorker((await request(url as string, '/metrics')).text, 'streamrec_serving_workers').size === 2, 30_000, 'both workers in the metrics');
      expect(byWorker((await request(url as string, '/metrics')).text, 'streamrec_serving_model_version')).toEqual(new Map([['0', 2], ['1', 2]]));

      // SIGTERM: every worker drains and exits, then the primary.
      const stopping = exited(server);
      server.kill('SIGTERM');
      expect((await stopping).code).toBe(0);
      expect(server.output()).toContain('serving stopped');
      for (const pid of [pids[1] as number, replaced as number]) expect(alive(pid)).toBe(false);
      expect(processesWith(config)).toEqual([]);
    } finally {
      server.kill('SIGKILL');
    }
  }, 300_000);
});
