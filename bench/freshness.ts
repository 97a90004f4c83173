/**
 * `npm run bench -- freshness [--duration 120] [--dataset synthetic:users=600] [--interval 15]
 *   [--flush-ms 2000] [--max-wait-ms 10 on the mock cluster, else 200] [--rate 20] [--bootstrap-epochs 1] [--rebuild-every 0] [--inference-thread false] [--work-dir <dir>]`
 *
 * How fresh the live loop keeps what users get, measured end to end on a Kafka-protocol broker
 * (KAFKA_BROKERS, or librdkafka's mock cluster started here) with the roles as users run them, as
 * processes of the CLI:
 * - `streamrec run`: ingest + live trainer + serving in one process (serving reads ingest's rolling
 *   histories), bootstrapping its first model from the first 80% of the dataset's interactions;
 * - `streamrec serve --histories kafka://...`: a separate serving replica that follows the history
 *   changelog ingest writes at each flush (`--flush-ms`: ingest.flush.intervalMs).
 * `--max-wait-ms` is ingest.consumer.maxWaitMs: how long the broker holds a fetch with nothing new
 * (a real broker answers as soon as a message arrives; librdkafka's mock cluster holds it the
 * whole time, so there it bounds how late a caught-up ingest sees an event: the default there is
 * 10 ms, what a real broker's answer-on-arrival amounts to; on a real broker (KAFKA_BROKERS without
 * KAFKA_IS_MOCK=1), the config's 200).
 * Probes that time out count as slower than any other in the percentiles (a percentile among them
 * is null) and are counted under `probes.missed` / `probes.model_uncovered`.
 * Then, for `--duration` s, the rest of the dataset streams in at `--rate` interactions/s and:
 * - history: every 250 ms an interaction of a user never seen before is produced; the time from
 *   the broker's acknowledgement until each server answers that user from a history (no longer the
 *   popular fallback), polled every 2 ms: `history_*` (one process) and `changelog_history_*`
 *   (the replica);
 * - model: the time from each of those events' acknowledgement until a published live version's
 *   stream position covers its offset (the registry polled every 100 ms): `model_*_s`;
 * - new items: every 15 s a catalog item never seen before (and three interactions with it) is
 *   produced; the time until `GET /v1/items/{id}/similar` of the one-process server answers 200
 *   (the served model knows it, so it can be recommended): `new_item_servable_*_s`.
 * The live trainer runs at `--interval` s (live.intervalSeconds). With `--rebuild-every` s above 0
 * (live.rebuild.everySeconds) it also makes full rebuilds in the background (trained from the
 * archive, gated beside the live model): what they cost the other numbers, and how many were
 * published, refused or failed (`rebuilds`, from the trainer's lines). `--inference-thread true`
 * runs both servers' ONNX sessions on an inference thread (serving.inferenceThread). The last stdout line is one JSON
 * object with those numbers and the settings they were measured at. With `--work-dir`, every probe
 * is also a `freshness_probes` row in the run's embedded ClickHouse there, beside the run's own
 * rows: `streamrec report --clickhouse chdb:<work-dir>/clickhouse` draws their histograms.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Kafka, Producer } from 'kafkajs';
import { datasetEvents, loadDataset } from '../datasets';
import { ConfigError } from '../errors';
import { ArtifactStore } from '../infra/artifacts';
import { openClickHouse } from '../infra/clickhouse';
import { createKafka } from '../infra/kafka';
import { openModelRegistry, storeCheckpoints } from '../infra/registry';
import { encodeReplayEvent, type EncodedMessage } from '../ingest';
import { AppConfig } from '../jobs';
import { KafkaConfig } from '../schemas/config';
import { exited, spawnCli } from '../test/cli';
import { startMockCluster, type MockCluster } from '../test/brokers/mockCluster';
import { numberFlag, parseFlags } from './_flags';
import { percentile } from './_measure';

const log = (text: string): void => void process.stderr.write(`[bench freshness ${new Date().toISOString().slice(11, 19)}] ${text}\n`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const round = (v: number, places = 3): number => Math.round(v * 10 ** places) / 10 ** places;

/** Sends one message and returns its partition and offset once the broker acknowledged it. */
async function send(producer: Producer, topic: string, message: Pick<EncodedMessage, 'key' | 'value'>): Promise<{ partition: number; offset: number; ackedAt: number }> {
  const [meta] = await producer.send({ topic, acks: -1, messages: [{ key: message.key, value: message.value }] });
  if (!meta) throw new Error(`no acknowledgement from ${topic}`);
  return { partition: meta.partition, offset: Number(meta.baseOffset), ackedAt: performance.now() };
}

async function until<T>(what: string, timeoutMs: number, probe: () => T | undefined | Promise<T | undefined>, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** Polls `url` every `everyMs` until `ready(status, body)`; the time it took (ms), or undefined after `timeoutMs`. */
async function pollUntil(url: string, ready: (status: number, body: string) => boolean, since: number, timeoutMs: number, everyMs: number): Promise<number | undefined> {
  for (;;) {
    const response = await fetch(url);
    const body = await response.text();
    const now = performance.now();
    if (ready(response.status, body)) return now - since;
    if (now - since > timeoutMs) return undefined;
    await sleep(everyMs);
  }
}

/**
 * Percentiles of the measured latencies with the `missed` probes (timed out) counted as slower than
 * any: a percentile that falls among them is null (beyond the probe's timeout), never a number
 * computed without them.
 */
function summary(values: readonly number[], missed: number, scale = 1, places = 1): { p50: number | null; p99: number | null; max: number | null; n: number } {
  const sorted = Float64Array.from([...values, ...Array.from({ length: missed }, () => Number.POSITIVE_INFINITY)]).sort();
  const at = (p: number): number | null => {
    const v = percentile(sorted, p);
    return Number.isFinite(v) ? round(v * scale, places) : null;
  };
  return sorted.length === 0 ? { p50: null, p99: null, max: null, n: 0 } : { p50: at(0.5), p99: at(0.99), max: at(1), n: values.length };
}

export async function run(args: string[]): Promise<Record<string, unknown>> {
  const flags = parseFlags(args, new Set(['duration', 'dataset', 'interval', 'flush-ms', 'max-wait-ms', 'rate', 'bootstrap-epochs', 'rebuild-every', 'inference-thread', 'work-dir']));
  const duration = numberFlag(flags, 'duration') ?? 120;
  const interval = numberFlag(flags, 'interval') ?? AppConfig.parse({}).live.intervalSeconds;
  const flushMs = numberFlag(flags, 'flush-ms') ?? AppConfig.parse({}).ingest.flush.intervalMs;
  // On librdkafka's mock cluster the default is 10 ms: the mock holds every fetch for the whole
  // maxWaitMs even when a message arrives, which a real broker does not (it answers on arrival),
  // so the configured 200 ms would measure the mock. On a real broker: the configured default.
  const onMock = !process.env.KAFKA_BROKERS || process.env.KAFKA_IS_MOCK === '1';
  const maxWaitMs = numberFlag(flags, 'max-wait-ms') ?? (onMock ? 10 : AppConfig.parse({}).ingest.consumer.maxWaitMs);
  const rate = numberFlag(flags, 'rate') ?? 20;
  const epochs = numberFlag(flags, 'bootstrap-epochs') ?? 1;
  const rebuildEvery = numberFlag(flags, 'rebuild-every') ?? 0;
  const threadFlag = flags.get('inference-thread') ?? String(AppConfig.parse({}).serving.inferenceThread);
  if (threadFlag !== 'true' && threadFlag !== 'false') throw new ConfigError(`freshness: --inference-thread must be true or false, got ${JSON.stringify(threadFlag)}`);
  const inferenceThread = threadFlag === 'true';
  if (!(duration > 0 && interval > 0 && flushMs >= 1 && rate > 0 && Number.isInteger(epochs) && epochs >= 1)) throw new ConfigError('freshness: --duration, --interval, --flush-ms, --rate and --bootstrap-epochs must be positive');
  const spec = flags.get('dataset') ?? 'synthetic:users=600';
  const root = flags.get('work-dir') ?? mkdtempSync(path.join(tmpdir(), 'streamrec-bench-freshness-'));
  mkdirSync(root, { recursive: true });

  const dataset = await loadDataset(spec);
  const events = [...datasetEvents(dataset)].map(encodeReplayEvent);
  const catalog = events.filter((m) => m.stream === 'catalog');
  const interactions = events.filter((m) => m.stream === 'interactions');
  const first = Math.floor(interactions.length * 0.8);
  log(`${dataset.name}: ${catalog.length} items, ${interactions.length} interactions (first ${first} before the model)`);

  const external = process.env.KAFKA_BROKERS;
  const suffix = Date.now().toString(36);
  const topics = { interactions: `fresh-in-${suffix}`, catalog: `fresh-cat-${suffix}`, changelog: `fresh-log-${suffix}` };
  let mock: MockCluster | undefined;
  if (!external) mock = await startMockCluster({ topics: [{ name: topics.interactions, partitions: 4 }, { name: topics.catalog, partitions: 1 }, { name: topics.changelog, partitions: 4 }] });
  const brokers = external ? external.split(',') : (mock?.brokers ?? []);
  const kafka: Kafka = createKafka(KafkaConfig.parse({ brokers, clientId: 'bench-freshness' }));
  const raw = {
    artifacts: { dir: path.join(root, 'artifacts'), registryFile: path.join(root, 'artifacts', 'item-registry.json') },
    clickhouse: { url: `chdb:${path.join(root, 'clickhouse')}` },
    modelRegistry: { url: `dir:${path.join(root, 'registry')}` },
    ingest: { topics, flush: { intervalMs: flushMs }, consumer: { maxWaitMs } },
    live: { intervalSeconds: interval, ...(rebuildEvery > 0 ? { rebuild: { everySeconds: rebuildEvery } } : {}) },
    serving: { inferenceThread },
  };
  const configFile = path.join(root, 'config.json');
  writeFileSync(configFile, JSON.stringify(raw));
  const config = AppConfig.parse(raw);
  const store = new ArtifactStore(config.artifacts.dir);
  const registry = openModelRegistry(config.modelRegistry.url, storeCheckpoints(store));
  const source = `kafka://${brokers.join(',')}/${topics.interactions}`;
  const producer = kafka.producer({ allowAutoTopicCreation: true });
  await producer.connect();
  const children: Array<ReturnType<typeof spawnCli>> = [];
  /** Every probe, for the freshness_probes table (the report's histograms), written once the roles have stopped. */
  const probes: Array<{ bench_id: string; kind: string; latency_ms: number; measured_at: number }> = [];
  const benchId = `freshness-${suffix}`;
  try {
    // The catalog and the first 80%, then the one-process loop bootstraps its first model from them.
    for (const m of catalog) await producer.send({ topic: topics.catalog, messages: [{ key: m.key, value: m.value }] });
    for (let i = 0; i < first; i += 500) await producer.send({ topic: topics.interactions, messages: interactions.slice(i, Math.min(i + 500, first)).map((m) => ({ key: m.key, value: m.value })) });
    const t0 = performance.now();
    const one = spawnCli(['--config', configFile, 'run', '--source', source, '--catalog-topic', topics.catalog, '--port', '0', '--progress-ms', '0', '--bootstrap', String(first), '--bootstrap-epochs', String(epochs)]);
    children.push(one);
    const alive = (child: ReturnType<typeof spawnCli>, name: string): void => {
      if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode}:\n${child.output().slice(-3000)}`);
    };
    const runUrl = await until('streamrec run to listen', 120_000, () => (alive(one, 'streamrec run'), /serving on (http:\/\/\S+)/.exec(one.output())?.[1]));
    await until('the first model', 1_800_000, () => (alive(one, 'streamrec run'), /version 1 is live/.test(one.output()) ? true : undefined), 500);
    log(`first model published ${round((performance.now() - t0) / 1000, 1)} s after start`);
    const replica = spawnCli(['--config', configFile, 'serve', '--histories', `kafka://${brokers.join(',')}`, '--port', '0']);
    children.push(replica);
    const replicaUrl = await until('the serving replica to listen', 120_000, () => (alive(replica, 'streamrec serve'), /serving on (http:\/\/\S+)/.exec(replica.output())?.[1]));
    const knownUser = encodeURIComponent(dataset.sequences[0]?.userId as string);
    for (const url of [runUrl, replicaUrl]) await until(`a model at ${url}`, 120_000, async () => ((await fetch(`${url}/v1/users/${knownUser}/recommendations?k=1`)).status === 200 ? true : undefined), 200);
    log(`serving: one process ${runUrl}, replica ${replicaUrl}; streaming for ${duration} s`);

    // The live phase.
    const history: number[] = [];
    const changelogHistory: number[] = [];
    const pendingModel: Array<{ topic: string; partition: number; offset: number; ackedAt: number }> = [];
    const model: number[] = [];
    const newItems: number[] = [];
    /** A probe's latency `ms` from `ackedAt` (performance.now()); measured at its end, as wall-clock ms. */
    const probe = (list: number[], kind: string, ms: number, ackedAt: number): void => {
      list.push(ms);
      probes.push({ bench_id: benchId, kind, latency_ms: ms, measured_at: Math.round(performance.timeOrigin + ackedAt + ms) });
    };
    let missed = { history: 0, changelog: 0, newItems: 0 };
    const end = performance.now() + duration * 1000;
    const item0 = catalog[0] ? (JSON.parse(catalog[0].value.toString()) as Record<string, unknown>) : {};
    const knownItems = catalog.map((m) => m.key);
    const tasks: Array<Promise<unknown>> = [];

    // Background stream: the rest of the dataset at `rate` interactions/s.
    tasks.push(
      (async () => {
        for (let i = first; i < interactions.length && performance.now() < end; i++) {
          const m = interactions[i] as EncodedMessage;
          await producer.send({ topic: topics.interactions, messages: [{ key: m.key, value: m.value }] });
          await sleep(1000 / rate);
        }
      })(),
    );
    // History probes (every 250 ms), which are also the model probes.
    tasks.push(
      (async () => {
        for (let n = 0; performance.now() < end; n++) {
          const userId = `fresh-user-${suffix}-${n}`;
          const event = { eventId: `fresh-${suffix}-${n}`, userId, itemId: knownItems[n % knownItems.length], type: 'click', ts: Date.now() };
          const acked = await send(producer, topics.interactions, { key: userId, value: Buffer.from(JSON.stringify(event)) });
          pendingModel.push({ topic: topics.interactions, ...acked });
          const path = `/v1/users/${encodeURIComponent(userId)}/recommendations?k=1`;
          const fromHistory = (status: number, body: string): boolean => status === 200 && !body.includes('"fallback"');
          const [a, b] = await Promise.all([pollUntil(`${runUrl}${path}`, fromHistory, acked.ackedAt, 10_000, 2), pollUntil(`${replicaUrl}${path}`, fromHistory, acked.ackedAt, 30_000, 2)]);
          if (a === undefined) missed = { ...missed, history: missed.history + 1 };
          else probe(history, 'history', a, acked.ackedAt);
          if (b === undefined) missed = { ...missed, changelog: missed.changelog + 1 };
          else probe(changelogHistory, 'changelog_history', b, acked.ackedAt);
          await sleep(250);
        }
      })(),
    );
    // New catalog items every 15 s.
    tasks.push(
      (async () => {
        for (let n = 0; performance.now() < end - 5_000; n++) {
          const itemId = `fresh-item-${suffix}-${n}`;
          const item = { ...item0, itemId, ts: Date.now(), title: `${String(item0.title ?? 'item')} (new ${n})` };
          const acked = await send(producer, topics.catalog, { key: itemId, value: Buffer.from(JSON.stringify(item)) });
          for (let u = 0; u < 3; u++) {
            const userId = dataset.sequences[(n * 3 + u) % dataset.sequences.length]?.userId as string;
            await send(producer, topics.interactions, { key: userId, value: Buffer.from(JSON.stringify({ eventId: `fresh-item-ev-${suffix}-${n}-${u}`, userId, itemId, type: 'click', ts: Date.now() })) });
          }
          const took = await pollUntil(`${runUrl}/v1/items/${encodeURIComponent(itemId)}/similar?k=1`, (status) => status === 200, acked.ackedAt, 180_000, 100);
          if (took === undefined) missed = { ...missed, newItems: missed.newItems + 1 };
          else probe(newItems, 'new_item', took, acked.ackedAt);
          await sleep(Math.max(0, 15_000 - (took ?? 0)));
        }
      })(),
    );
    // Model probes: a published version covers an event once its stream position is past the event's offset.
    let lastVersion = 0;
    const models = (async () => {
      const deadline = end + 180_000;
      while (performance.now() < deadline && (performance.now() < end || pendingModel.length > 0)) {
        const live = await registry.live();
        if (live && live.version !== lastVersion) {
          lastVersion = live.version;
          const seenAt = performance.now();
          const settings = (await store.open(live.checkpointId)).manifest.settings as { trainingState?: { stream?: { offsets?: Record<string, number> } } };
          const offsets = settings.trainingState?.stream?.offsets ?? {};
          for (let i = pendingModel.length - 1; i >= 0; i--) {
            const p = pendingModel[i] as (typeof pendingModel)[number];
            if ((offsets[`${p.topic}/${p.partition}`] ?? 0) > p.offset) {
              probe(model, 'model', seenAt - p.ackedAt, p.ackedAt);
              pendingModel.splice(i, 1);
            }
          }
          log(`version ${live.version} published: ${model.length} probe events covered, ${pendingModel.length} waiting`);
        }
        await sleep(100);
      }
    })();
    await Promise.all(tasks);
    await models;
    log(`history ms (one process), sorted: ${[...history].sort((a, b) => a - b).map((v) => Math.round(v)).join(' ')}`);
    log(`history ms (changelog replica), sorted: ${[...changelogHistory].sort((a, b) => a - b).map((v) => Math.round(v)).join(' ')}`);
    const h = summary(history, missed.history);
    if (missed.history + missed.changelog + missed.newItems + pendingModel.length > 0) {
      log(`probes that timed out (counted as slower than any in the percentiles): ${JSON.stringify({ ...missed, model: pendingModel.length })}`);
    }
    const c = summary(changelogHistory, missed.changelog);
    const m = summary(model, pendingModel.length, 1 / 1000);
    const i = summary(newItems, missed.newItems, 1 / 1000);
    // What the trainer said of its full rebuilds (describeStep's lines).
    const runOutput = children[0]?.output() ?? '';
    const rebuilds = Object.fromEntries(
      ['started', 'published', 'refused', 'failed'].map((what) => [what, (runOutput.match(new RegExp(`full rebuild rebuild-\\w+ ${what}\\b`, 'g')) ?? []).length]),
    );
    for (const line of runOutput.split('\n').filter((l) => /full rebuild rebuild-\w+ (started|published|refused|failed)/.test(l))) log(line.replace(/^.*?(full rebuild)/, '$1'));
    return {
      dataset: dataset.name,
      duration_s: duration,
      history_p50_ms: h.p50,
      history_p99_ms: h.p99,
      model_p50_s: m.p50,
      model_p99_s: m.p99,
      new_item_servable_p99_s: i.p99,
      changelog_history_p50_ms: c.p50,
      changelog_history_p99_ms: c.p99,
      new_item_servable_p50_s: i.p50,
      probes: { history: h.n, changelog_history: c.n, model: m.n, model_uncovered: pendingModel.length, new_items: i.n, missed },
      rebuilds,
      settings: { live_interval_s: interval, rebuild_every_s: rebuildEvery, inference_thread: inferenceThread, flush_interval_ms: flushMs, consumer_max_wait_ms: maxWaitMs, background_rate: rate, history_poll_ms: 2, broker: external ? 'KAFKA_BROKERS' : 'librdkafka mock cluster' },
    };
  } finally {
    for (const child of children) child.kill('SIGTERM');
    await Promise.all(children.map((c) => Promise.race([exited(c), sleep(30_000)])));
    // What the roles printed, beside the stores (kept with --work-dir).
    children.forEach((c, i) => writeFileSync(path.join(root, `${['run', 'serve'][i] ?? 'child'}.out`), c.output()));
    // With --work-dir, the probes beside the run's own rows (the embedded engine is free once the
    // roles exited): `streamrec report --clickhouse chdb:<work-dir>/clickhouse` draws them.
    if (probes.length > 0 && flags.has('work-dir')) {
      const ch = await openClickHouse(config.clickhouse);
      try {
        await ch.insert('freshness_probes', probes);
        log(`${probes.length} probes written to freshness_probes (${config.clickhouse.url})`);
      } finally {
        await ch.close();
      }
    }
    await producer.disconnect();
    await mock?.stop();
    if (!flags.has('work-dir')) rmSync(root, { recursive: true, force: true });
  }
}
