import type { Command } from 'commander';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { datasetEvents, interactionCount, loadDataset, type LoadedDataset, type ReplayEvent } from '../../datasets';
import { ConfigError } from '../../errors';
import { ArtifactStore } from '../../infra/artifacts';
import { openClickHouse } from '../../infra/clickhouse';
import { sleep } from '../../infra/retry';
import { initTf } from '../../infra/tf';
import { encodeReplayEvent, stagedReplayBatches, startIngest, type EncodedMessage } from '../../ingest';
import { FAULT_KINDS, faultyMessage } from '../../ingest/faults';
import { LiveTrainer, firstModelTrainer, type LiveStep, openRegistry, publishCheckpoint, runRebuildJob, runTrainJob, withOverrides, type AppConfig } from '../../jobs';
import { logToFile } from '../../logging';
import { Random } from '../../random';
import type { ItemEvent } from '../../schemas/events';
import { LocalHistories, startServing, type ServingRuntime } from '../../serving';
import { commandConfig, type GlobalOptions } from '../config';
import { progressBar } from '../progress';
import { jobProgress, printRebuild, printTrainResult } from '../report';
import { printTable } from '../table';
import { writeReport } from '../../report';
import { portFlag } from '../flags';

/** One analyst query the demo runs and prints, so a user sees how to read the archive. */
export const DEMO_QUERY = `SELECT type, count() AS events, uniqExact(user_id) AS users,
       min(ts) AS first, max(ts) AS last
FROM streamrec.interactions FINAL
GROUP BY type
ORDER BY events DESC`;

/** The evaluation rows of the demo's training run. */
export const EVAL_QUERY = `SELECT split, metric, k, round(value, 4) AS value, users_evaluated, text_prior_weight
FROM streamrec.evaluation_results FINAL
WHERE run_id = {run:String} AND k = 10 AND metric IN ('recall', 'ndcg') AND split = 'test'
ORDER BY text_prior_weight, metric`;

/** The micro-epoch rows of the demo's live loop. */
export const MICRO_QUERY = `SELECT micro_epoch, events, examples, round(prequential['ndcg@10'], 4) AS prequential_ndcg10,
       steps, round(train_s, 1) AS train_s, accepted, published_version
FROM streamrec.micro_epochs FINAL
WHERE method = 'live'
ORDER BY window_end`;

/** Share of the interactions (in time order) archived before the first model is trained; the rest streams in afterwards. */
const FIRST_PART = 0.8;
/** Slices the rest of the stream arrives in, one every {@link SLICE_MS} (or `--duration` / LATER_SLICES): it flows while the live loop trains. */
const LATER_SLICES = 24;
const SLICE_MS = 750;
/** The demo's trainer looks this often (live.intervalSeconds; the stream's rest takes ~18 s by default). */
const DEMO_LOOK_SECONDS = 4;

/** The demo's default: the built-in synthetic world with 600 users (about 14k interactions). */
export const DEMO_WORLD = 'synthetic:users=600';

/** Mixes bad messages into a replay so that dead-lettering shows up in the demo; each message says whether it is a (good) interaction. */
function* withFaults(events: Iterable<ReplayEvent>, rate: number, seed: number): Generator<{ readonly message: EncodedMessage; readonly interaction: boolean }> {
  const rng = new Random(seed);
  const kinds = FAULT_KINDS.filter((k) => k !== 'late');
  let n = 0;
  for (const e of events) {
    yield { message: encodeReplayEvent(e), interaction: e.kind === 'interaction' };
    if (e.kind === 'interaction' && rng.next() < rate) {
      const kind = kinds[rng.int(kinds.length)]!;
      const bad = faultyMessage(kind, e.event, rng, { now: Date.now(), lateByMs: 0, maxMessageBytes: 64 * 1024, eventId: `demo-bad-${n++}` });
      yield { message: { stream: 'interactions', key: bad.key, value: bad.value }, interaction: false };
    }
  }
}

interface DemoFlags {
  dataset: string;
  badRate: string;
  dataDir: string;
  model: string;
  epochs: string;
  ingestOnly?: boolean;
  verbose?: boolean;
  port: string;
  duration: string;
}

const fmt = (n: number): string => n.toLocaleString('en-US');

/** What a person reads as an item: its title (or other text), cut short. */
function itemLabel(item: ItemEvent | undefined, id: string): string {
  const text = item?.title ?? item?.meta ?? item?.description ?? id;
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/** Cell values of a query result as strings (ClickHouse returns some numbers as strings). */
function cells(rows: ReadonlyArray<Record<string, unknown>>): Array<Record<string, string>> {
  return rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === 'object' ? JSON.stringify(v) : String(v)])));
}

export function registerDemo(program: Command, globals: () => GlobalOptions): void {
  program
    .command('demo')
    .description(
      'The main job on embedded defaults: a built-in synthetic world replayed through the ingest operators into rolling histories and embedded ClickHouse, ' +
        'semantic IDs rebuilt from the archive, CCFRec trained and evaluated and published, micro-epochs as the rest of the stream arrives, the live model served over HTTP (hot-swapped as micro-epochs publish)',
    )
    .option('-d, --dataset <name|dir>', 'what to replay: the built-in synthetic world (synthetic:<key=value,...> to change it), ml-100k, scientific, or a directory', DEMO_WORLD)
    .option('--bad-rate <fraction>', 'fraction of extra malformed messages mixed in to show dead-lettering', '0.01')
    .option('--data-dir <dir>', 'where the demo keeps its embedded ClickHouse, artifacts, registry and log (wiped at start)', '.streamrec/demo')
    .option('--model <ccfrec|sasrec>', 'model trained on the archive after ingest', 'ccfrec')
    .option('--epochs <n>', 'training epochs', '3')
    .option('--ingest-only', 'stop after the ingest stage')
    .option('--port <n>', 'HTTP port of the demo\'s server (0: any free port; a busy port falls back to a free one)', '8080')
    .option(
      '--duration <seconds>',
      `how long the live phase lasts: the rest of the stream flows in over this many seconds while the trainer fine-tunes and the server serves (Ctrl-C stops earlier); 0: ~${Math.round((LATER_SLICES * SLICE_MS) / 1000)} s`,
      '0',
    )
    .option('--verbose', 'logs on the terminal (JSON lines) instead of in <data-dir>/demo.log')
    .action(async (opts: DemoFlags) => {
      const badRate = Number(opts.badRate);
      if (!Number.isFinite(badRate) || badRate < 0 || badRate > 1) throw new ConfigError(`--bad-rate: expected a fraction in [0, 1], got ${JSON.stringify(opts.badRate)}`);
      if (opts.model !== 'ccfrec' && opts.model !== 'sasrec') throw new ConfigError(`--model must be ccfrec or sasrec, got ${JSON.stringify(opts.model)}`);
      const port = portFlag('--port', opts.port);
      const epochs = Number(opts.epochs);
      if (!Number.isInteger(epochs) || epochs < 1) throw new ConfigError(`--epochs: expected a whole number >= 1, got ${JSON.stringify(opts.epochs)}`);
      const duration = Number(opts.duration);
      if (!Number.isFinite(duration) || duration < 0) throw new ConfigError(`--duration: expected seconds >= 0, got ${JSON.stringify(opts.duration)}`);
      // Ctrl-C: the step under way finishes, then everything stops cleanly (ingest flushed, server drained).
      const interrupt = new AbortController();
      const onSignal = (): void => {
        if (!interrupt.signal.aborted) process.stdout.write('\nstopping: finishing the step under way, then closing ingest and the server\n');
        interrupt.abort();
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      const interrupted = (): boolean => interrupt.signal.aborted;
      let serving: ServingRuntime | undefined;
      const dataDir = path.resolve(opts.dataDir);
      rmSync(dataDir, { recursive: true, force: true });
      const logFile = path.join(dataDir, 'demo.log');
      const restoreLogs = opts.verbose ? () => undefined : logToFile(logFile);
      const out = process.stdout;
      let openAll = (): void => undefined;
      let stopIngest = async (): Promise<void> => undefined;
      let finished = false;
      try {
        // Where the demo keeps everything; written out so that later commands find it (--config).
        const places = {
          clickhouse: { url: `chdb:${path.join(dataDir, 'clickhouse')}` },
          artifacts: { dir: path.join(dataDir, 'artifacts'), registryFile: path.join(dataDir, 'artifacts', 'item-registry.json') },
          modelRegistry: { url: `dir:${path.join(dataDir, 'model-registry')}` },
          serving: { reportFile: path.join(dataDir, 'report.html') },
        };
        const config = withOverrides(commandConfig(globals()), { ...places, ingest: { historyStore: 'memory' } });
        const configFile = path.join(dataDir, 'config.json');
        mkdirSync(dataDir, { recursive: true });
        writeFileSync(configFile, `${JSON.stringify(places, null, 2)}\n`);
        const db = config.clickhouse.database;
        out.write(`streamrec demo: everything under ${dataDir}${opts.verbose ? '' : `; logs in ${logFile}`}\n\n`);

        // 1. Ingest: the dataset as a stream, through the same operators that consume Kafka. The
        // first part now; the rest keeps arriving while the live loop trains (step 5).
        const dataset = await loadDataset(opts.dataset);
        const stages = streamStages(withFaults(datasetEvents(dataset), badRate, 7), interactionCount(dataset));
        out.write(
          `[1/6] Ingest: ${dataset.name} replayed through the ingest operators (decode, validate, dedupe, rolling histories, sessions) into ClickHouse; ` +
            `the catalog and the first ${FIRST_PART * 100}% of the interactions now, the rest in step 5\n`,
        );
        const firstMessages = stages[0]?.length ?? 0;
        const bar = progressBar(`ingest ${dataset.name}`.padEnd(16), firstMessages, 'messages');
        let released = firstMessages;
        const gates = stages.map(() => gate());
        const batches = stagedReplayBatches(stages, { topics: config.ingest.topics, partitions: 4 }, (stage) => (gates[stage] as ReturnType<typeof gate>).promise);
        const started = Date.now();
        const runtime = await startIngest({ config, batches });
        // However the demo ends, the replay is let go so that ingest can finish.
        openAll = () => gates.forEach((g) => g.open());
        stopIngest = () => runtime.stop();
        const off = runtime.instrumentation.on('ingest.batch_end', () => bar.update(runtime.processor.totals.messages));
        // Ingest's end: a failure is thrown by whoever waits for the archive (it would never catch up).
        let ingestFailed: { readonly error: unknown } | undefined;
        runtime.done.catch((error: unknown) => void (ingestFailed = { error }));
        /** Waits until every message released so far is processed and archived (flushed), or Ctrl-C. */
        const archived = async (): Promise<void> => {
          while (runtime.processor.totals.messages < released && !interrupted()) {
            if (ingestFailed) throw ingestFailed.error;
            await new Promise((r) => setTimeout(r, 20));
          }
          await runtime.processor.flush();
        };
        await archived();
        off();
        bar.stop();
        const seconds = (Date.now() - started) / 1000;
        const t = runtime.processor.totals;
        printTable([
          { what: 'messages', count: fmt(t.messages), note: `${fmt(Math.round(t.messages / seconds))} msg/s, ${seconds.toFixed(1)} s` },
          { what: 'interactions', count: fmt(t.accepted), note: 'accepted and archived' },
          { what: 'catalog items', count: fmt(t.items), note: 'archived' },
          { what: 'users', count: fmt(runtime.store.size), note: `rolling histories (last ${config.ingest.history.maxLength} items each)` },
          ...Object.entries(t.deadLetterCodes).map(([code, n]) => ({ what: `dead letters: ${code}`, count: fmt(n), note: 'kept with the reason' })),
        ]);
        const ch = await openClickHouse(config.clickhouse);
        try {
          out.write(`\nAn analyst query on the archive (${config.clickhouse.url}):\n\n${DEMO_QUERY}\n\n`);
          printTable(cells(await ch.query<Record<string, unknown>>(DEMO_QUERY.replace('streamrec.', `${db}.`))));
        } finally {
          await ch.close();
        }
        if (opts.ingestOnly) {
          openAll();
          await runtime.done;
          return;
        }

        // 2. Semantic IDs of the archived catalog.
        out.write('\n[2/6] Semantic IDs of the archived catalog (streamrec rebuild --from-clickhouse): text -> embeddings -> PCA -> RQ-KMeans codes\n');
        const progress = jobProgress();
        const rebuilt = await runRebuildJob(config, { source: { kind: 'archive' }, instrumentation: progress.instrumentation });
        progress.stop();
        printRebuild(rebuilt);

        // 3. Train and evaluate on the archive.
        out.write(`\n[3/6] Training ${opts.model} on the archive (streamrec train --model ${opts.model} --from-clickhouse --epochs ${opts.epochs}), full-ranking evaluation:\n`);
        const backend = await initTf();
        if (backend.backend !== 'tensorflow') {
          out.write(`  note: TensorFlow.js runs on its ${backend.backend} backend (${backend.reason}); training is several times slower than on the native one (npm run setup:tfjs-node)\n`);
        }
        // Sized for a few minutes on 2 cores, the text prior tuned on validation (as streamrec run --bootstrap).
        const trainer = firstModelTrainer(config, opts.model, epochs);
        const trained = await runTrainJob({ config, trainer, source: { kind: 'archive' }, writeRows: true, instrumentation: progress.instrumentation });
        progress.stop();
        printTrainResult(trained);
        const ch2 = await openClickHouse(config.clickhouse);
        try {
          out.write(`\nThe evaluation rows are in ClickHouse too:\n\n${EVAL_QUERY}\n\n`);
          printTable(cells(await ch2.query<Record<string, unknown>>(EVAL_QUERY.replace(/streamrec\./g, `${db}.`), { run: trained.runId })));
        } finally {
          await ch2.close();
        }
        if (!trained.checkpointId) throw new ConfigError('the training run wrote no checkpoint');

        // 4. Publish it as the live model version.
        out.write('\n[4/6] Publishing the checkpoint as the live model (streamrec publish):\n');
        const store = new ArtifactStore(config.artifacts.dir);
        const registry = openRegistry(config);
        const publication = await publishCheckpoint({ registry, store, checkpoint: trained.checkpointId, reason: 'demo' });
        if (!publication.published) throw new ConfigError(`not published: ${publication.reason}`);
        out.write(`  version ${publication.model.version} is live: ${publication.model.checkpointId} (${registry.url})\n`);
        if (interrupted()) return;
        // Served from now on (streamrec serve), over ingest's rolling histories in this process; the
        // server swaps to each version the micro-epochs publish.
        serving = await startDemoServer(config, new LocalHistories(runtime.store), port, out);
        out.write(`  served on ${serving.url} (streamrec serve; histories straight from ingest's rolling store); ask it yourself while the demo runs:\n`);
        out.write(`    curl '${serving.url}/v1/users/${encodeURIComponent(dataset.sequences[0]?.userId ?? 'u1')}/recommendations?k=5'\n    curl ${serving.url}/metrics\n`);
        if (interrupted()) return;

        // 5. The stream goes on, on its own clock: a slice of the rest every SLICE_MS, ingested and
        // archived as it comes, while the live trainer looks every DEMO_LOOK_SECONDS (streamrec
        // trainer: a micro-epoch on whatever was archived since its position) and the server swaps
        // to each version it publishes.
        const restInteractions = interactionCount(dataset) - Math.floor(interactionCount(dataset) * FIRST_PART);
        const sliceMs = duration > 0 ? (duration * 1000) / LATER_SLICES : SLICE_MS;
        out.write(
          `\n[5/6] The stream goes on: the other ${100 - FIRST_PART * 100}% of the interactions (${fmt(restInteractions)}) flow in over ~${Math.round((LATER_SLICES * sliceMs) / 1000)} s while the live trainer ` +
            `(streamrec trainer) looks every ${DEMO_LOOK_SECONDS} s: each micro-epoch scores the live model on what arrived first, fine-tunes it from its optimizer state with replay, ` +
            'gates it on held-out recent events and publishes it; the server swaps to each version:\n',
        );
        const live = await LiveTrainer.start({
          config,
          registry,
          // Sized for the demo: at most 20 steps a micro-epoch, everything archived in one look; on
          // embedded stores a failed look is a bug to show, not a blip to retry (maxFailures 0).
          live: { ...config.live, intervalSeconds: DEMO_LOOK_SECONDS, maxEvents: 1_000_000, maxFailures: 0, micro: { ...config.live.micro, maxSteps: 20 } },
        });
        const microRows: Array<Record<string, string | number>> = [];
        let liveModel = publication.model;
        // The trainer reads everything archived past its position: what it has read is what was
        // archived of the rest when it last read.
        let read = 0;
        const onStep = async (step: LiveStep): Promise<void> => {
          const r = step.result;
          if (!r) return;
          if (step.published) liveModel = step.published;
          read += step.read;
          const served = await servedVersion(serving, liveModel.version, interrupt.signal);
          microRows.push({
            'micro-epoch': microRows.length + 1,
            interactions: fmt(step.read),
            archived: `${fmt(read)}/${fmt(restInteractions)}`,
            'prequential ndcg@10': r.prequential ? (r.prequential.metrics['ndcg@10'] ?? Number.NaN).toFixed(4) : '-',
            steps: r.steps,
            seconds: r.computeSeconds.toFixed(1),
            gate: r.accepted ? 'passed' : 'refused',
            published: step.published ? `version ${step.published.version}` : '-',
            served: served === undefined ? '-' : `version ${served}`,
          });
          out.write(
            `  micro-epoch ${microRows.length}: ${fmt(step.read)} interactions (${fmt(read)} of the ${fmt(restInteractions)} archived when it read), ` +
              `${step.published ? `published as version ${step.published.version}` : `not published (${step.notPublished ?? 'nothing new'})`}\n`,
          );
        };
        // The first failure of the trainer's loop, of reporting a step or of the stream stops the
        // loop; it is thrown once the trainer is stopped and closed.
        const stopLooking = new AbortController();
        let failure: { readonly error: unknown } | undefined;
        const fail = (error: unknown): void => {
          failure ??= { error };
          stopLooking.abort();
        };
        let looks: Promise<void> = Promise.resolve();
        // Steps are reported in order, each after the server has swapped to what it published.
        const looking = live.run(stopLooking.signal, (step) => void (looks = looks.then(() => onStep(step)).catch(fail))).catch(fail);
        try {
          for (let slice = 1; slice < stages.length && !interrupted() && !failure; slice++) {
            released += stages[slice]?.length ?? 0;
            gates[slice]?.open();
            await sleep(sliceMs, interrupt.signal);
          }
          // The stream has ended: once it is all archived, one last look reads what is left.
          if (!interrupted() && !failure) await archived();
        } catch (error) {
          fail(error);
        } finally {
          stopLooking.abort();
          await looking;
          await looks;
          try {
            if (!interrupted() && !failure) {
              const last = await live.step();
              if (last.result) await onStep(last);
            }
          } finally {
            await live.close();
          }
        }
        if (failure) throw failure.error;
        if (interrupted()) return;
        out.write('\n');
        printTable(microRows);
        await runtime.done;
        const all = runtime.processor.totals;
        out.write(`\n  ingest in all: ${fmt(all.accepted)} interactions accepted, ${fmt(all.deadLetters)} dead letters, ${fmt(runtime.store.size)} users with rolling histories\n`);
        const ch3 = await openClickHouse(config.clickhouse);
        try {
          out.write(`\nThe micro-epochs are rows in ClickHouse too:\n\n${MICRO_QUERY}\n\n`);
          printTable(cells(await ch3.query<Record<string, unknown>>(MICRO_QUERY.replace(/streamrec\./g, `${db}.`))));
        } finally {
          await ch3.close();
        }

        // The report of everything above, from the ClickHouse tables; the server answers it at /report.
        const report = await writeReport(config.clickhouse, { out: config.serving.reportFile });

        // 6. Recommendations over HTTP from the server, for users' live histories.
        if (interrupted()) return;
        out.write(`\n[6/6] Serving: recommendations over HTTP (${serving.url}) from the live model (version ${liveModel.version}) for users' rolling histories:\n`);
        const sampleUser = await showRecommendations(serving.url, runtime.store, dataset, out);
        const relative = path.relative(process.cwd(), configFile);
        const cfg = relative.startsWith('..') ? configFile : relative;
        out.write(`\nThe report (training, the live loop, semantic IDs, ingest; charts from the ClickHouse tables): ${report.file}\n`);
        out.write(`  open it in a browser, or ${serving.url}/report while the demo serves; again later: npx streamrec --config ${cfg} report --out report.html\n`);
        out.write(`\nDone. The demo's stores stay in ${dataDir}; for example:\n`);
        out.write(`  npx streamrec --config ${cfg} eval --checkpoint ${trained.checkpointId} --from-clickhouse --text-prior tuned\n`);
        out.write(`  npx streamrec --config ${cfg} publish --list\n`);
        out.write(`  npx streamrec --config ${cfg} trainer --once          # another micro-epoch when more is archived\n`);
        out.write(`  npx streamrec --config ${cfg} serve --histories memory --port 8080\n`);
        out.write(
          `\nThe demo's server stops with it (npm run demo -- --duration 600 streams the rest over 10 minutes, the loop training and the server serving meanwhile); ` +
            `the serve command above serves these stores again, e.g. curl 'http://127.0.0.1:8080/v1/users/${encodeURIComponent(sampleUser ?? 'u1')}/recommendations?k=5'\n`,
        );
        finished = true;
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        if (serving) {
          await serving.close().catch(() => undefined);
          out.write(`server on ${serving.url} stopped\n`);
        }
        if (!finished) {
          openAll();
          await stopIngest().catch(() => undefined);
          if (interrupted()) out.write('demo stopped (Ctrl-C)\n');
        }
        restoreLogs();
      }
    });
}

/**
 * The replay in stages: the catalog and the first {@link FIRST_PART} of the interactions (with
 * their bad messages), then the rest in {@link LATER_SLICES} equal slices.
 */
function streamStages(messages: Iterable<{ readonly message: EncodedMessage; readonly interaction: boolean }>, interactions: number): EncodedMessage[][] {
  const firstEnd = Math.floor(interactions * FIRST_PART);
  const bounds = [firstEnd, ...Array.from({ length: LATER_SLICES }, (_, p) => firstEnd + Math.round(((p + 1) * (interactions - firstEnd)) / LATER_SLICES))];
  const stages: EncodedMessage[][] = bounds.map(() => []);
  let seen = 0;
  let stage = 0;
  for (const { message, interaction } of messages) {
    if (interaction) {
      // A good interaction moves the count; bad messages travel with the interaction before them.
      while (stage < bounds.length - 1 && seen >= (bounds[stage] as number)) stage++;
      seen++;
    }
    stages[stage]?.push(message);
  }
  return stages;
}

/** A promise with its resolve function: the gate before one stage of the replay. */
function gate(): { readonly promise: Promise<void>; readonly open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

/**
 * The demo's server: `streamrec serve` in this process on `port`, or on a free port when that one
 * is taken (the demo should not fail because something else listens on 8080).
 */
async function startDemoServer(config: AppConfig, histories: LocalHistories, port: number, out: NodeJS.WritableStream): Promise<ServingRuntime> {
  // The histories live in this process: one server here (serving.workers is for streamrec serve).
  if (config.serving.workers > 1) out.write(`  serving.workers ${config.serving.workers} ignored: the demo serves from its own process\n`);
  const at = (p: number): AppConfig => withOverrides(config, { serving: { port: p, workers: 1 } });
  try {
    return await startServing(at(port), { histories: { kind: 'memory', histories } });
  } catch (error) {
    if ((error as { code?: string }).code !== 'EADDRINUSE' || port === 0) throw error;
    out.write(`  port ${port} is taken; serving on a free port instead\n`);
    return startServing(at(0), { histories: { kind: 'memory', histories } });
  }
}

/** The version the server answers with once it has swapped to `version` (it polls the registry), or what it still answers with after 30 s. */
async function servedVersion(serving: ServingRuntime | undefined, version: number, signal: AbortSignal): Promise<number | undefined> {
  if (!serving) return undefined;
  const deadline = Date.now() + 30_000;
  const failed = serving.models.failedSwaps;
  // Until it answers with that version, a swap fails (it keeps the one it has), 30 s, or Ctrl-C.
  while ((serving.models.current?.published.version ?? 0) < version && Date.now() < deadline && serving.models.failedSwaps === failed && !signal.aborted) await sleep(50, signal);
  return serving.models.current?.published.version;
}

/**
 * Top-5 items for three users with live histories, asked of the server over HTTP
 * (`GET /v1/users/{id}/recommendations`), beside their last items. Returns one of the users.
 */
async function showRecommendations(
  url: string,
  histories: { get(userId: string): { itemIds: string[] } | undefined },
  dataset: LoadedDataset,
  out: NodeJS.WritableStream,
): Promise<string | undefined> {
  const byId = new Map(dataset.items.map((i) => [i.itemId, i]));
  const users = dataset.sequences.filter((s) => (histories.get(s.userId)?.itemIds.length ?? 0) >= 3).slice(0, 3).map((s) => s.userId);
  for (const userId of users) {
    const response = await fetch(`${url}/v1/users/${encodeURIComponent(userId)}/recommendations?k=5`);
    const body = (await response.json()) as { model?: { version?: number }; items?: Array<{ itemId: string; score: number }>; error?: { message?: string } };
    if (!response.ok) throw new ConfigError(`the demo's server answered ${response.status} for user ${userId}: ${body.error?.message ?? JSON.stringify(body)}`);
    const recent = (histories.get(userId)?.itemIds ?? []).slice(-3).map((id) => itemLabel(byId.get(id), id));
    out.write(`\n  user ${userId}, last items: ${recent.map((r) => `"${r}"`).join(', ')}; recommended by version ${body.model?.version} (items the user has are left out):\n`);
    printTable(
      (body.items ?? []).map((item, rank) => ({ rank: rank + 1, item: item.itemId, score: item.score.toFixed(3), title: itemLabel(byId.get(item.itemId), item.itemId) })),
      out,
    );
  }
  return users[0];
}
