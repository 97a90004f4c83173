import type { Command } from 'commander';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { datasetEvents, interactionCount, loadDataset, type ReplayEvent } from '../../datasets';
import { encodeReplayEvent, replayBatches, startIngest, type EncodedMessage } from '../../ingest';
import { FAULT_KINDS, faultyMessage } from '../../ingest/faults';
import { openClickHouse } from '../../infra/clickhouse';
import { Random } from '../../random';
import { commandConfig, type GlobalOptions } from '../config';
import { runRebuild } from './rebuild';
import { runTraining } from './train';
import { progressBar } from '../progress';

/** One analyst query the demo runs and prints, so a user sees how to read the archive. */
export const DEMO_QUERY = `SELECT type, count() AS events, uniqExact(user_id) AS users,
       round(avg(value), 2) AS avg_rating, min(ts) AS first, max(ts) AS last
FROM streamrec.interactions FINAL
GROUP BY type
ORDER BY events DESC`;

/** The evaluation rows of the demo's training run. */
export const EVAL_QUERY = `SELECT split, epoch, metric, k, round(value, 4) AS value, users_evaluated
FROM streamrec.evaluation_results FINAL
WHERE run_id = {run:String} AND k = 10 AND metric IN ('recall', 'ndcg')
ORDER BY split, epoch, metric`;

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

export function registerDemo(program: Command, globals: () => GlobalOptions): void {
  program
    .command('demo')
    .description('The main job on embedded defaults: replay MovieLens 100K through the ingest operators into histories and embedded ClickHouse, rebuild semantic IDs from the archive, train and evaluate')
    .option('-d, --dataset <name|dir>', 'dataset to replay', 'ml-100k')
    .option('--bad-rate <fraction>', 'fraction of extra malformed messages mixed in to show dead-lettering', '0.01')
    .option('--data-dir <dir>', 'where the demo keeps its embedded ClickHouse and artifacts (wiped at start)', '.streamrec/demo')
    .option('--model <ccfrec|sasrec>', 'model trained on the archive after ingest', 'sasrec')
    .option('--epochs <n>', 'training epochs', '2')
    .option('--ingest-only', 'stop after the ingest stage')
    .action(async (opts: { dataset: string; badRate: string; dataDir: string; model: string; epochs: string; ingestOnly?: boolean }) => {
      const dataDir = path.resolve(opts.dataDir);
      rmSync(dataDir, { recursive: true, force: true });
      const chDir = path.join(dataDir, 'clickhouse');
      const config = commandConfig(globals(), {
        clickhouse: { url: `chdb:${chDir}` },
        ingest: { historyStore: 'memory' },
        artifacts: { dir: path.join(dataDir, 'artifacts'), registryFile: path.join(dataDir, 'artifacts', 'item-registry.json') },
      });
      const dataset = await loadDataset(opts.dataset);
      const total = dataset.items.length + interactionCount(dataset);
      const bar = progressBar(`ingest ${dataset.name}`, Math.round(total * (1 + Number(opts.badRate))));
      const batches = replayBatches(withFaults(datasetEvents(dataset), Number(opts.badRate), 7), { topics: config.ingest.topics, partitions: 4 });
      const started = Date.now();
      const runtime = await startIngest({ config, batches });
      const off = runtime.instrumentation.on('ingest.batch_end', () => bar.update(runtime.processor.totals.messages));
      await runtime.done;
      off();
      bar.stop();
      const seconds = (Date.now() - started) / 1000;
      const t = runtime.processor.totals;
      const ch = await openClickHouse(config.clickhouse);
      const rows = await ch.query<Record<string, unknown>>(DEMO_QUERY.replace('streamrec.', `${config.clickhouse.database}.`));
      await ch.close();
      const out = process.stdout;
      out.write(`\nstreamrec demo: ${dataset.name} replayed through the ingest operators (${seconds.toFixed(1)} s)\n`);
      out.write(`  messages        ${t.messages.toLocaleString('en-US')} (${Math.round(t.messages / seconds).toLocaleString('en-US')} msg/s)\n`);
      out.write(`  interactions    ${t.accepted.toLocaleString('en-US')} accepted, catalog items ${t.items.toLocaleString('en-US')}\n`);
      out.write(`  users           ${runtime.store.size.toLocaleString('en-US')} rolling histories (last ${config.ingest.history.maxLength} items each)\n`);
      out.write(`  dead letters    ${t.deadLetters} ${JSON.stringify(t.deadLetterCodes)}\n`);
      out.write(`  ClickHouse      ${config.clickhouse.url} (database ${config.clickhouse.database})\n\n`);
      out.write(`An analyst query on the archive:\n\n${DEMO_QUERY}\n\n`);
      console.table(rows);
      if (opts.ingestOnly) return;

      out.write('\nSemantic IDs of the archived catalog (streamrec rebuild --from-clickhouse):\n');
      await runRebuild(config, { fromClickhouse: true });
      out.write(`\nTraining ${opts.model} on the archive (streamrec train --model ${opts.model} --from-clickhouse --epochs ${opts.epochs}):\n`);
      const result = await runTraining(config, { model: opts.model, fromClickhouse: true, epochs: opts.epochs, clickhouse: true });
      out.write(`\nEvaluation rows are in ClickHouse too:\n\n${EVAL_QUERY}\n\n`);
      const ch2 = await openClickHouse(config.clickhouse);
      console.table(await ch2.query<Record<string, unknown>>(EVAL_QUERY.replace(/streamrec\./g, `${config.clickhouse.database}.`), { run: result.runId }));
      await ch2.close();
    });
}
