import type { Command } from 'commander';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { datasetEvents, interactionCount, loadDataset, type LoadedDataset, type ReplayEvent } from '../../datasets';
import { ConfigError } from '../../errors';
import { ArtifactStore } from '../../infra/artifacts';
import { openClickHouse } from '../../infra/clickhouse';
import { initTf } from '../../infra/tf';
import { encodeReplayEvent, replayBatches, startIngest, type EncodedMessage } from '../../ingest';
import { FAULT_KINDS, faultyMessage } from '../../ingest/faults';
import { openRegistry, publishCheckpoint, runRebuildJob, runTrainJob, trainerConfigFromFlags, withOverrides } from '../../jobs';
import { logToFile } from '../../logging';
import { Random } from '../../random';
import type { ItemEvent } from '../../schemas/events';
import { ModelVersion } from '../../serving';
import { commandConfig, type GlobalOptions } from '../config';
import { progressBar } from '../progress';
import { jobProgress, printRebuild, printTrainResult } from '../report';
import { printTable } from '../table';

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

/** The demo's default: the built-in synthetic world with 600 users (about 14k interactions). */
export const DEMO_WORLD = 'synthetic:users=600';

/** Mixes bad messages into a replay so that dead-lettering shows up in the demo. */
function* withFaults(events: Iterable<ReplayEvent>, rate: number, seed: number): Generator<EncodedMessage> {
  const rng = new Random(seed);
  const kinds = FAULT_KINDS.filter((k) => k !== 'late');
  let n = 0;
  for (const e of events) {
    yield encodeReplayEvent(e);
    if (e.kind === 'interaction' && rng.next() < rate) {
      const kind = kinds[rng.int(kinds.length)]!;
      const bad = faultyMessage(kind, e.event, rng, { now: Date.now(), lateByMs: 0, maxMessageBytes: 64 * 1024, eventId: `demo-bad-${n++}` });
      yield { stream: 'interactions', key: bad.key, value: bad.value };
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
        'semantic IDs rebuilt from the archive, CCFRec trained and evaluated, the model published and asked for recommendations',
    )
    .option('-d, --dataset <name|dir>', 'what to replay: the built-in synthetic world (synthetic:<key=value,...> to change it), ml-100k, scientific, or a directory', DEMO_WORLD)
    .option('--bad-rate <fraction>', 'fraction of extra malformed messages mixed in to show dead-lettering', '0.01')
    .option('--data-dir <dir>', 'where the demo keeps its embedded ClickHouse, artifacts, registry and log (wiped at start)', '.streamrec/demo')
    .option('--model <ccfrec|sasrec>', 'model trained on the archive after ingest', 'ccfrec')
    .option('--epochs <n>', 'training epochs', '3')
    .option('--ingest-only', 'stop after the ingest stage')
    .option('--verbose', 'logs on the terminal (JSON lines) instead of in <data-dir>/demo.log')
    .action(async (opts: DemoFlags) => {
      const badRate = Number(opts.badRate);
      if (!Number.isFinite(badRate) || badRate < 0 || badRate > 1) throw new ConfigError(`--bad-rate: expected a fraction in [0, 1], got ${JSON.stringify(opts.badRate)}`);
      if (opts.model !== 'ccfrec' && opts.model !== 'sasrec') throw new ConfigError(`--model must be ccfrec or sasrec, got ${JSON.stringify(opts.model)}`);
      const dataDir = path.resolve(opts.dataDir);
      rmSync(dataDir, { recursive: true, force: true });
      const logFile = path.join(dataDir, 'demo.log');
      const restoreLogs = opts.verbose ? () => undefined : logToFile(logFile);
      const out = process.stdout;
      try {
        // Where the demo keeps everything; written out so that later commands find it (--config).
        const places = {
          clickhouse: { url: `chdb:${path.join(dataDir, 'clickhouse')}` },
          artifacts: { dir: path.join(dataDir, 'artifacts'), registryFile: path.join(dataDir, 'artifacts', 'item-registry.json') },
          modelRegistry: { url: `dir:${path.join(dataDir, 'model-registry')}` },
        };
        const config = withOverrides(commandConfig(globals()), { ...places, ingest: { historyStore: 'memory' } });
        const configFile = path.join(dataDir, 'config.json');
        mkdirSync(dataDir, { recursive: true });
        writeFileSync(configFile, `${JSON.stringify(places, null, 2)}\n`);
        const db = config.clickhouse.database;
        out.write(`streamrec demo: everything under ${dataDir}${opts.verbose ? '' : `; logs in ${logFile}`}\n\n`);

        // 1. Ingest: the dataset as a stream, through the same operators that consume Kafka.
        const dataset = await loadDataset(opts.dataset);
        out.write(`[1/5] Ingest: ${dataset.name} replayed through the ingest operators (decode, validate, dedupe, rolling histories, sessions) into ClickHouse\n`);
        const total = dataset.items.length + interactionCount(dataset);
        const bar = progressBar(`ingest ${dataset.name}`.padEnd(16), Math.round(total * (1 + badRate)), 'messages');
        const batches = replayBatches(withFaults(datasetEvents(dataset), badRate, 7), { topics: config.ingest.topics, partitions: 4 });
        const started = Date.now();
        const runtime = await startIngest({ config, batches });
        const off = runtime.instrumentation.on('ingest.batch_end', () => bar.update(runtime.processor.totals.messages));
        await runtime.done;
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
        if (opts.ingestOnly) return;

        // 2. Semantic IDs of the archived catalog.
        out.write('\n[2/5] Semantic IDs of the archived catalog (streamrec rebuild --from-clickhouse): text -> embeddings -> PCA -> RQ-KMeans codes\n');
        const progress = jobProgress();
        const rebuilt = await runRebuildJob(config, { source: { kind: 'archive' }, instrumentation: progress.instrumentation });
        progress.stop();
        printRebuild(rebuilt);

        // 3. Train and evaluate on the archive.
        out.write(`\n[3/5] Training ${opts.model} on the archive (streamrec train --model ${opts.model} --from-clickhouse --epochs ${opts.epochs}), full-ranking evaluation:\n`);
        const backend = await initTf();
        if (backend.backend !== 'tensorflow') {
          out.write(`  note: TensorFlow.js runs on its ${backend.backend} backend (${backend.reason}); training is several times slower than on the native one (npm run setup:tfjs-node)\n`);
        }
        // Sized for a few minutes on 2 cores: a short warm-up (the default's 500 steps are several
        // epochs here) and the last 10 items of each history. The text prior is tuned on validation.
        const trainer = trainerConfigFromFlags(config.trainer, opts.model, {
          epochs: opts.epochs,
          warmup: '50',
          'max-history': '10',
          'text-prior': '0.25,0.5,1',
          'text-prior-last': '1,3',
        });
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
        out.write('\n[4/5] Publishing the checkpoint as the live model (streamrec publish):\n');
        const store = new ArtifactStore(config.artifacts.dir);
        const registry = openRegistry(config);
        const publication = await publishCheckpoint({ registry, store, checkpoint: trained.checkpointId, reason: 'demo' });
        if (!publication.published) throw new ConfigError(`not published: ${publication.reason}`);
        out.write(`  version ${publication.model.version} is live: ${publication.model.checkpointId} (${registry.url})\n`);

        // 5. Recommendations for users' live histories from the published model.
        out.write('\n[5/5] Recommendations from the live model for users\' rolling histories (what serving will answer):\n');
        // The model version serving loads: the live publication, its user encoder and ranker.
        const version = await ModelVersion.load(store, publication.model, { engine: config.serving.engine, ann: config.serving.ann, candidates: config.serving.candidates });
        try {
          await showRecommendations(version, runtime.store, dataset, out);
        } finally {
          version.dispose();
        }
        const relative = path.relative(process.cwd(), configFile);
        const cfg = relative.startsWith('..') ? configFile : relative;
        out.write(`\nDone. The demo's stores stay in ${dataDir}; for example:\n`);
        out.write(`  npx streamrec --config ${cfg} eval --checkpoint ${trained.checkpointId} --from-clickhouse --text-prior tuned\n`);
        out.write(`  npx streamrec --config ${cfg} publish --list\n`);
      } finally {
        restoreLogs();
      }
    });
}

/** Top-5 items for three users' live histories, beside their last items, as serving ranks them (seen items left out). */
async function showRecommendations(
  version: ModelVersion,
  histories: { get(userId: string): { itemIds: string[] } | undefined },
  dataset: LoadedDataset,
  out: NodeJS.WritableStream,
): Promise<void> {
  const byId = new Map(dataset.items.map((i) => [i.itemId, i]));
  const users = dataset.sequences.filter((s) => (histories.get(s.userId)?.itemIds.length ?? 0) >= 3).slice(0, 3).map((s) => s.userId);
  const lists = users.map((u) => histories.get(u)?.itemIds ?? []);
  const ranked = await version.recommend(lists, 5, lists.map((list) => new Set(list)));
  users.forEach((userId, b) => {
    const recent = (lists[b] ?? []).slice(-3).map((id) => itemLabel(byId.get(id), id));
    out.write(`\n  user ${userId}, last items: ${recent.map((r) => `"${r}"`).join(', ')}; recommended (items the user has are left out):\n`);
    printTable(
      (ranked[b] ?? []).map((item, rank) => ({ rank: rank + 1, item: item.itemId, title: itemLabel(byId.get(item.itemId), item.itemId) })),
      out,
    );
  });
}
