/**
 * `npm run bench -- soak [--minutes 10] [--backlog 120000] [--rate N] [--partitions 8]`
 *
 * Does `streamrec ingest` hold steady for minutes? It runs as a child process (its memory is its
 * own) against a broker: first it consumes a backlog of `--backlog` events as fast as it can (its
 * measured ingest rate), then a producer here sends events at half that rate (or `--rate`) for
 * `--minutes`, steadily (every 100 ms). Every 5 s the child's RSS (/proc/<pid>/status) and its
 * reported lag are sampled. At the end the producer stops, the child drains and is stopped
 * (SIGTERM), and the archive (embedded ClickHouse) is counted: `lost` is events produced and not
 * archived (each has its own eventId). RSS is reported at the start of the steady phase (after a
 * minute's warm-up), at its end, and as a least-squares slope in MB per minute over the steady
 * phase: flat memory is the goal.
 *
 * Broker: KAFKA_BROKERS, or librdkafka's mock cluster (each mock partition keeps at most 5 MiB;
 * older messages, already consumed, are deleted as the soak goes on).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Message } from 'kafkajs';
import { ConfigError, StreamrecError } from '../errors';
import { openClickHouse } from '../infra/clickhouse';
import { createKafka, sendChunked } from '../infra/kafka';
import { ClickHouseConfig, KafkaConfig } from '../schemas/config';
import { startMockCluster } from '../test/brokers/mockCluster';
import { numberFlag, parseFlags } from './_flags';

const log = (line: string): void => void process.stderr.write(`[soak] ${line}\n`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const ROOT = path.resolve(__dirname, '..');
const USERS = 20_000;
const ITEMS = 50_000;
/** How often the child reports its progress (what the backlog rate is measured from). */
const PROGRESS_MS = 250;

/** Resident set size of process `pid` in MB (Linux). */
function rssMb(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'));
  return Number(/(\d+)/.exec(line ?? '')?.[1] ?? 0) / 1024;
}

/** Least-squares slope of y over x. */
function slope(points: ReadonlyArray<{ x: number; y: number }>): number {
  const n = points.length;
  if (n < 2) return 0;
  const mx = points.reduce((s, p) => s + p.x, 0) / n;
  const my = points.reduce((s, p) => s + p.y, 0) / n;
  const num = points.reduce((s, p) => s + (p.x - mx) * (p.y - my), 0);
  const den = points.reduce((s, p) => s + (p.x - mx) ** 2, 0);
  return den === 0 ? 0 : num / den;
}

const percentile = (values: readonly number[], q: number): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length === 0 ? 0 : (sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number);
};

export async function run(args: string[]): Promise<Record<string, unknown>> {
  const flags = parseFlags(args, new Set(['minutes', 'backlog', 'rate', 'partitions']));
  const minutes = numberFlag(flags, 'minutes') ?? 10;
  const backlog = numberFlag(flags, 'backlog') ?? 120_000;
  const partitions = numberFlag(flags, 'partitions') ?? 8;
  const fixedRate = numberFlag(flags, 'rate');
  if (!(minutes > 0)) throw new ConfigError(`--minutes must be > 0, got ${minutes}`);
  if (!Number.isInteger(backlog) || backlog < 1000) throw new ConfigError(`--backlog must be a whole number >= 1000, got ${backlog}`);
  const stamp = Date.now();
  const topics = { interactions: `soak-in-${stamp}`, catalog: `soak-cat-${stamp}`, changelog: `soak-log-${stamp}` };
  const external = process.env.KAFKA_BROKERS;
  const mock = external
    ? undefined
    : await startMockCluster({ topics: [{ name: topics.interactions, partitions }, { name: topics.changelog, partitions }, { name: topics.catalog, partitions: 1 }] });
  const brokers = external ? external.split(',') : (mock?.brokers ?? []);
  const kafka = createKafka(KafkaConfig.parse({ brokers, clientId: 'bench-soak' }));
  const chDir = mkdtempSync(path.join(tmpdir(), 'streamrec-bench-soak-'));
  const producer = kafka.producer({ allowAutoTopicCreation: true });
  await producer.connect();
  let produced = 0;
  const events = (count: number): Message[] =>
    Array.from({ length: count }, () => {
      const n = produced++;
      const userId = `u${(n * 7919) % USERS}`;
      return { key: userId, value: JSON.stringify({ eventId: `s${n}`, userId, itemId: `i${(n * 104_729) % ITEMS}`, type: 'view', ts: Date.now() }) };
    });
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(ROOT, 'cli', 'main.ts'), 'ingest', '--source', `kafka://${brokers.join(',')}/${topics.interactions}`, '--catalog-topic', topics.catalog, '--group', `soak-${stamp}`, '--clickhouse', `chdb:${chDir}`, '--progress-ms', String(PROGRESS_MS)],
    { cwd: ROOT, env: { ...process.env, STREAMREC_LOG_LEVEL: 'info', STREAMREC__INGEST__TOPICS__CHANGELOG: topics.changelog }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  // The child's progress lines (JSON logs on stderr): messages so far and lag.
  const progress = { total: 0, lag: 0, at: 0 };
  let errors = '';
  let buffered = '';
  child.stdout.resume();
  child.stderr.on('data', (d: Buffer) => {
    errors = (errors + d.toString()).slice(-4000);
    buffered += d.toString();
    const lines = buffered.split('\n');
    buffered = lines.pop() ?? '';
    for (const line of lines) {
      if (!line.includes('ingest progress')) continue;
      const p = JSON.parse(line) as { totalMessages: number; lag: number | null };
      progress.total = p.totalMessages;
      progress.lag = p.lag ?? 0;
      progress.at = Date.now();
    }
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const alive = (): void => {
    if (child.exitCode !== null) throw new StreamrecError(`streamrec ingest exited early (${child.exitCode}): ${errors}`);
  };
  try {
    log(`backlog: producing ${backlog} events to ${partitions} partitions`);
    await sendChunked(producer, topics.interactions, events(backlog));
    let first = 0;
    const deadline = Date.now() + 10 * 60_000;
    while (progress.total < backlog) {
      alive();
      if (first === 0 && progress.total > 0) first = progress.at - PROGRESS_MS; // the interval whose line first counted messages
      if (Date.now() > deadline) throw new StreamrecError(`the backlog was not consumed in 10 min (${progress.total} of ${backlog})`);
      await sleep(50);
    }
    const measured = Math.round(backlog / ((progress.at - first) / 1000));
    const rate = fixedRate ?? Math.max(1, Math.round(measured / 2));
    log(`ingest rate on the backlog: ${measured} events/s; steady producer at ${rate} events/s for ${minutes} min`);

    const samples: Array<{ t: number; rss: number; lag: number }> = [];
    const started = Date.now();
    const end = started + minutes * 60_000;
    let nextSample = started;
    let owed = 0;
    let last = started;
    while (Date.now() < end) {
      alive();
      const now = Date.now();
      owed += ((now - last) / 1000) * rate;
      last = now;
      const count = Math.floor(owed);
      owed -= count;
      if (count > 0) await sendChunked(producer, topics.interactions, events(count));
      if (now >= nextSample) {
        samples.push({ t: (now - started) / 60_000, rss: rssMb(child.pid as number), lag: progress.lag });
        nextSample += 5000;
        const s = samples.at(-1) as { rss: number; lag: number };
        process.stderr.write(`\r[soak] ${((now - started) / 60_000).toFixed(1)} min: rss ${s.rss.toFixed(0)} MB, lag ${s.lag}, produced ${produced}   `);
      }
      await sleep(Math.max(0, 100 - (Date.now() - now)));
    }
    process.stderr.write('\n');
    const drainBy = Date.now() + 120_000;
    while (progress.total < produced && Date.now() < drainBy) {
      alive();
      await sleep(200);
    }
    const drained = progress.total >= produced;
    child.kill('SIGTERM');
    const code = await exited;
    if (code !== 0) throw new StreamrecError(`streamrec ingest exited ${code} on SIGTERM: ${errors}`);

    const ch = await openClickHouse(ClickHouseConfig.parse({ url: `chdb:${chDir}` }));
    let archived = 0;
    try {
      const [row] = await ch.query<{ n: string }>(`SELECT uniqExact(event_id) AS n FROM ${ch.table('interactions')}`);
      archived = Number(row?.n ?? 0);
    } finally {
      await ch.close();
    }
    const steady = samples.filter((s) => s.t >= Math.min(1, minutes / 5));
    const lags = samples.map((s) => s.lag);
    return {
      broker: external ? 'external' : `librdkafka mock cluster (${partitions} partitions)`,
      minutes,
      measured_ingest_events_per_s: measured,
      producer_events_per_s: rate,
      produced,
      archived,
      lost: produced - archived,
      drained,
      rss_start_mb: Number((steady[0]?.rss ?? 0).toFixed(1)),
      rss_end_mb: Number((steady.at(-1)?.rss ?? 0).toFixed(1)),
      rss_max_mb: Number(Math.max(...samples.map((s) => s.rss)).toFixed(1)),
      rss_slope_mb_per_min: Number(slope(steady.map((s) => ({ x: s.t, y: s.rss }))).toFixed(2)),
      // Caches (embedded ClickHouse's above all) fill for the first minutes: the second half says whether memory levelled off.
      rss_slope_second_half_mb_per_min: Number(slope(samples.filter((s) => s.t >= minutes / 2).map((s) => ({ x: s.t, y: s.rss }))).toFixed(2)),
      rss_mean_second_half_mb: Number((samples.filter((s) => s.t >= minutes / 2).reduce((n, s) => n + s.rss, 0) / Math.max(1, samples.filter((s) => s.t >= minutes / 2).length)).toFixed(1)),
      lag_p50: percentile(lags, 0.5),
      lag_max: Math.max(...lags),
      lag_end: samples.at(-1)?.lag ?? 0,
    };
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    await producer.disconnect().catch(() => undefined);
    await mock?.stop();
  }
}
