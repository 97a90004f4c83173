import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { datasetEvents, loadDataset } from '../datasets';
import { encodeReplayEvent } from '../ingest';
import { exited, spawnCli } from './cli';
import { produceAll } from './ingestHarness';
import { kafkaKind, testBrokers, testKafka, uniqueName } from './kafka';
import { tinyLiveConfig } from './tinyArchive';
import { writeTinyScientific } from './tinyScientific';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, timeoutMs: number, probe: () => T | undefined | Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

interface Answer {
  readonly model: { readonly version: number };
  readonly historyLength: number;
  readonly items: ReadonlyArray<{ readonly itemId: string }>;
  readonly fallback?: string;
}

/**
 * `streamrec run`, the live loop in one process, on a Kafka-protocol broker: the catalog and the
 * first 60% of the interactions are produced; the process trains and publishes the first model
 * itself (--bootstrap) and serves it over ingest's histories; the next 20% is produced, a
 * micro-epoch continues the model and publishes it, and the server answers with the new version
 * (hot swap). Meanwhile a scheduled full rebuild trains on the trainer's thread; as the rest
 * arrives it is caught up, scored beside the live model, published, and served. SIGTERM stops it
 * cleanly with every interaction ingested.
 */
describe(`streamrec run (ingest + trainer + serve in one process) on ${kafkaKind()}`, () => {
  const root = mkdtempSync(path.join(tmpdir(), 'streamrec-run-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('bootstraps the first model from the stream, serves it, swaps to the micro-epoch that follows, and to a full rebuild trained meanwhile', async () => {
    const data = writeTinyScientific(mkdtempSync(path.join(root, 'data-')), { users: 160 });
    const dataset = await loadDataset(data);
    const events = [...datasetEvents(dataset)].map(encodeReplayEvent);
    const catalog = events.filter((m) => m.stream === 'catalog');
    const interactions = events.filter((m) => m.stream === 'interactions');
    const cut = Math.floor(interactions.length * 0.6);
    const topics = { interactions: uniqueName('run-in'), catalog: uniqueName('run-cat'), changelog: uniqueName('run-log') };
    const configFile = path.join(root, 'config.json');
    writeFileSync(
      configFile,
      JSON.stringify({
        ...tinyLiveConfig(root),
        ingest: { topics, flush: { intervalMs: 200 } },
        // A full rebuild at the trainer's first look (the bootstrap's codebooks are over a second
        // old by then), trained on the trainer's thread beside the micro-epochs, published once
        // scored on 20 examples beside the live model (a margin that any candidate passes).
        live: { intervalSeconds: 1, micro: { maxSteps: 4, batchSize: 32, gateMargin: 1, holdoutFraction: 0.2 }, rebuild: { everySeconds: 1, epochs: 1, gateExamples: 20, gateMargin: 1 } },
        serving: { reloadPollMs: 100 },
      }),
    );
    const kafka = testKafka();
    await produceAll(kafka, topics.catalog, catalog);
    await produceAll(kafka, topics.interactions, interactions.slice(0, cut));

    const args = ['--config', configFile, 'run', '--source', `kafka://${testBrokers().join(',')}/${topics.interactions}`, '--catalog-topic', topics.catalog, '--group', uniqueName('run-group')];
    const child = spawnCli([...args, '--bootstrap', String(cut), '--bootstrap-epochs', '1', '--port', '0', '--progress-ms', '0', '--history-store', 'memory']);
    try {
      const url = await until('the server', 120_000, () => /serving on (http:\/\/\S+)/.exec(child.output())?.[1] ?? (child.exitCode !== null ? Promise.reject(new Error(child.output())) : undefined));
      await until('the first model', 300_000, () => (/version 1 is live/.test(child.output()) ? true : child.exitCode !== null ? Promise.reject(new Error(child.output())) : undefined));
      const user = dataset.sequences[0]?.userId as string;
      // 503 (no model loaded) until the server has loaded the first publication.
      const ask = async (): Promise<Answer | undefined> => {
        const response = await fetch(`${url}/v1/users/${encodeURIComponent(user)}/recommendations?k=5`);
        if (response.status === 503) return undefined;
        expect(response.status).toBe(200);
        return (await response.json()) as Answer;
      };
      const first = await until('version 1 served', 60_000, async () => {
        const a = await ask();
        return a?.model.version === 1 ? a : undefined;
      });
      // Served over the user's live history from ingest, in this process: not the popular fallback.
      expect(first.fallback).toBeUndefined();
      expect(first.historyLength).toBeGreaterThan(0);
      expect(first.items).toHaveLength(5);

      // The next 20% of the stream: a micro-epoch continues the live model and publishes it; the server swaps.
      const next = Math.floor(interactions.length * 0.8);
      await produceAll(kafka, topics.interactions, interactions.slice(cut, next));
      await until('a micro-epoch publication', 240_000, () => (/micro-epoch \d+: .*published as version 2/.test(child.output()) ? true : child.exitCode !== null ? Promise.reject(new Error(child.output())) : undefined));
      const swapped = await until('version 2 served', 60_000, async () => {
        const a = await ask();
        return a && a.model.version >= 2 ? a : undefined;
      });
      expect(swapped.items).toHaveLength(5);
      expect(child.output()).toMatch(/full rebuild rebuild-\w+ started \(schedule: /);

      // The rest, a slice at a time (a micro-epoch each): once the candidate is trained, a look
      // catches it up and scores it beside the live model; it is published, and the server swaps
      // to its lineage (new codebooks and catalog).
      const rebuilt = /full rebuild rebuild-\w+ published as version (\d+)/;
      const slice = Math.ceil((interactions.length - next) / 8);
      for (let from = next; from < interactions.length; from += slice) {
        const seen = (child.output().match(/micro-epoch \d+:/g) ?? []).length;
        await produceAll(kafka, topics.interactions, interactions.slice(from, from + slice));
        await until('the micro-epoch of the slice', 120_000, () =>
          (child.output().match(/micro-epoch \d+:/g) ?? []).length > seen ? true : child.exitCode !== null ? Promise.reject(new Error(child.output())) : undefined,
        );
      }
      const version = Number(rebuilt.exec(child.output())?.[1] ?? Number.NaN);
      if (!Number.isFinite(version)) throw new Error(`no rebuilt candidate was published:\n${child.output().slice(-3000)}`);
      const fromRebuild = await until(`version ${version} (the rebuilt candidate) served`, 60_000, async () => {
        const a = await ask();
        return a && a.model.version >= version ? a : undefined;
      });
      expect(fromRebuild.items).toHaveLength(5);
    } finally {
      child.kill('SIGTERM');
    }
    const { code } = await exited(child);
    const output = child.output();
    if (code !== 0) throw new Error(`streamrec run exited with ${code}:\n${output.slice(-3000)}`);
    const stopped = /stopped: (\{.*\})/.exec(output)?.[1];
    expect(stopped).toBeDefined();
    const totals = JSON.parse(stopped as string) as { totals: { accepted: number; items: number }; users: number };
    expect(totals.totals.accepted).toBe(interactions.length);
    expect(totals.users).toBe(dataset.sequences.length);
  }, 600_000);
});
