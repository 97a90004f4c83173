import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadDataset, type LoadedDataset } from '../datasets';
import { ArtifactStore } from '../infra/artifacts';
import { IngestArchive, openClickHouse, type ClickHouse, type InteractionRow } from '../infra/clickhouse';
import { openModelRegistry, storeCheckpoints } from '../infra/registry';
import { tinyArchiveRows, tinyLiveConfig } from '../test/tinyArchive';
import { writeTinyScientific } from '../test/tinyScientific';
import { catalogDrift } from '../trainer';
import { AppConfig, LiveTrainerConfig } from './config';
import { LiveTrainer, driftReasons, type LiveStep } from './liveTrainer';
import { publishCheckpoint } from './publish';
import { runRebuildJob } from './rebuild';
import { loadServableModel } from './servable';
import { runTrainJob } from './train';
import { trainerConfigFromFlags } from './trainerFlags';

/**
 * Full rebuilds in the live loop on an embedded ClickHouse archive: triggered by drift (new items
 * coded with the old codebooks) or by the schedule, trained in the background while micro-epochs
 * go on, caught up to the live position, scored beside the live model on the same windows, and
 * published or dropped by the gate, with a live_rebuilds row either way.
 */
describe('LiveTrainer full rebuilds', () => {
  const root = mkdtempSync(path.join(tmpdir(), 'streamrec-live-rebuild-'));
  const data = writeTinyScientific(mkdtempSync(path.join(root, 'data-')));
  const config = AppConfig.parse(tinyLiveConfig(root));
  const micro = { maxSteps: 5, batchSize: 32, gateMargin: 1, holdoutFraction: 0.2 };
  const store = new ArtifactStore(config.artifacts.dir);
  const registry = openModelRegistry(config.modelRegistry.url, storeCheckpoints(store));
  let ch: ClickHouse;
  let archive: IngestArchive;
  let dataset: LoadedDataset;
  let rows: InteractionRow[];
  const at = (fraction: number): number => Math.floor(rows.length * fraction);
  const offsetsOf = (part: readonly InteractionRow[]): Record<string, number> => {
    const out: Record<string, number> = {};
    for (const r of part) out[`interactions/${r.partition}`] = Math.max(out[`interactions/${r.partition}`] ?? 0, r.offset + 1);
    return out;
  };
  const streamOf = async (checkpointId: string) =>
    ((await store.open(checkpointId)).manifest.settings as { trainingState?: { stream?: { offsets: Record<string, number> } } }).trainingState?.stream?.offsets;
  const parentOf = async (checkpointId: string) => (await store.open(checkpointId)).manifest.inputs.find((i) => i.role === 'parent_checkpoint')?.artifactId;
  const liveSemanticIds = async (): Promise<string | undefined> => {
    const servable = await loadServableModel(store, (await registry.live())?.checkpointId as string, { catalog: 'latest' });
    try {
      return servable.lineage.semanticIds;
    } finally {
      servable.dispose();
    }
  };

  beforeAll(async () => {
    ch = await openClickHouse(config.clickhouse);
    archive = new IngestArchive(ch);
    dataset = await loadDataset(data);
    const archived = tinyArchiveRows(dataset, 2);
    await archive.insertItems(archived.items);
    rows = archived.interactions;
    // The first model of the live loop, on the first half of the stream.
    await archive.insertInteractions(rows.slice(0, at(0.5)));
    await runRebuildJob(config, { source: { kind: 'archive' } });
    const trained = await runTrainJob({ config, trainer: trainerConfigFromFlags(config.trainer, 'ccfrec', {}), source: { kind: 'archive' }, writeRows: false });
    await publishCheckpoint({ registry, store, checkpoint: trained.checkpointId as string });
  }, 120_000);
  afterAll(async () => {
    await ch.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('starts a rebuild when new items drift from the codebooks, and drops a candidate the gate refuses', async () => {
    const first = (await registry.live()) as NonNullable<Awaited<ReturnType<typeof registry.live>>>;
    const ownBefore = await liveSemanticIds();
    // Catalog items the codebooks were not fitted on, and users going to them.
    const NEW = 6;
    await archive.insertItems(
      Array.from({ length: NEW }, (_, i) => ({
        item_id: `DRIFT${i}`, ts: Date.now(), title: '', brand: '', categories: [], description: '', features: [],
        meta: `oscilloscope probe ${i} volt meter calibration. Test equipment. Brand${i}.`, topic: 'catalog', partition: 0, offset: 5_000 + i, ingested_at: Date.now(),
      })),
    );
    await archive.insertInteractions(rows.slice(at(0.5), at(0.6)));
    // A gate no candidate can pass (it must beat the live model by 1 NDCG@10), no schedule.
    const live = LiveTrainerConfig.parse({ micro, rebuild: { everySeconds: 0, minNewItems: 2, newItemShare: 0.001, epochs: 1, gateExamples: 20, gateMargin: -1, retrySeconds: 3_600 } });
    const trainer = await LiveTrainer.start({ config, registry, live, writeRows: true });
    try {
      const started = await trainer.step();
      expect(started.newItems).toBe(NEW);
      expect(started.rebuild).toMatchObject({ phase: 'started', trigger: 'drift' });
      expect(started.rebuild?.phase === 'started' && started.rebuild.reason).toMatch(`${NEW} of ${dataset.items.length + NEW} items`);
      const drift = await catalogDrift(store, (await liveSemanticIds()) as string);
      expect(drift.newItems).toBe(NEW);
      expect(drift.items).toBe(dataset.items.length + NEW);
      expect(drift.rebuild.id).toBe(ownBefore);
      expect(drift.newItemsRelMse).toBeGreaterThan(0);
      // The new items' reconstruction error of the same catalog, alone past a threshold set just under it
      // (the collision trigger: driftReasons.test.ts).
      const ratio = (drift.newItemsRelMse as number) / (drift.rebuild.relMse as number);
      const alone = { minNewItems: 2, newItemShare: 1, relMseRatio: 1e9, collisionIncrease: 1 };
      expect(driftReasons(drift, { ...alone, relMseRatio: ratio * 0.99 })).toEqual([expect.stringMatching(/new items' relative error/)]);
      expect(driftReasons(drift, { ...alone, relMseRatio: ratio * 1.01 })).toEqual([]);

      await trainer.whenRebuildTrained();
      await archive.insertInteractions(rows.slice(at(0.6), at(0.7)));
      const decided = await trainer.step();
      expect(decided.rebuild).toMatchObject({ phase: 'decided', decision: 'refused' });
      expect(trainer.rebuilding).toBe(false);
      // The live lineage goes on as before: its own micro-epoch was published, on its own catalog.
      expect(decided.published?.version).toBeGreaterThan(first.version);
      expect(await liveSemanticIds()).not.toBe(undefined);
      expect((await catalogDrift(store, (await liveSemanticIds()) as string)).rebuild.id).toBe(ownBefore);
      // Refused: no new rebuild before retrySeconds, though the drift is still there.
      await archive.insertInteractions(rows.slice(at(0.7), at(0.72)));
      const after = await trainer.step();
      expect(after.rebuild).toBeUndefined();
      expect(trainer.rebuilding).toBe(false);
    } finally {
      await trainer.close();
    }
    const [row] = await ch.query<Record<string, string | number | null>>(`SELECT * FROM ${ch.table('live_rebuilds')} FINAL WHERE decision = 'refused'`);
    expect(row).toMatchObject({ trigger: 'drift', model: 'ccfrec', gate_metric: 'ndcg@10', margin: -1, version: null });
    expect(Number(row?.gate_examples)).toBeGreaterThanOrEqual(20);
    expect(row?.semantic_ids_id).not.toBe(ownBefore);
    expect(row?.checkpoint_id).toMatch(/^checkpoint-/);
    expect(String(row?.detail)).toMatch(/worse: ndcg@10 [\d.]+ vs live [\d.]+/);
  }, 300_000);

  it('refuses a candidate that gets no decision within gateTimeoutSeconds of being trained', async () => {
    const live = LiveTrainerConfig.parse({ micro, rebuild: { everySeconds: 0.001, epochs: 1, gateExamples: 1_000_000, gateTimeoutSeconds: 0.001, retrySeconds: 3_600 } });
    const trainer = await LiveTrainer.start({ config, registry, live, writeRows: true });
    try {
      await archive.insertInteractions(rows.slice(at(0.72), at(0.73)));
      expect((await trainer.step()).rebuild).toMatchObject({ phase: 'started', trigger: 'schedule' });
      await trainer.whenRebuildTrained();
      await new Promise((resolve) => setTimeout(resolve, 10));
      await archive.insertInteractions(rows.slice(at(0.73), at(0.74)));
      const timedOut = await trainer.step();
      expect(timedOut.rebuild).toMatchObject({ phase: 'decided', decision: 'refused' });
      expect(timedOut.rebuild?.phase === 'decided' && timedOut.rebuild.detail).toMatch(/^no decision within 0\.001 s of training: scored on \d+ of 1000000 examples/);
      expect(trainer.rebuilding).toBe(false);
    } finally {
      await trainer.close();
    }
  }, 300_000);

  it('rebuilds on the schedule while micro-epochs go on, catches the candidate up to the live position, and continues it once the gate publishes it', async () => {
    const ownBefore = await liveSemanticIds();
    const live = LiveTrainerConfig.parse({ micro, rebuild: { everySeconds: 0.001, epochs: 1, gateExamples: 20, gateMargin: 1 } });
    const progress: string[] = [];
    const trainer = await LiveTrainer.start({ config, registry, live, writeRows: true, onProgress: (what) => progress.push(what) });
    let fed = at(0.74);
    const feed = async (to: number): Promise<LiveStep> => {
      const part = rows.slice(fed, at(to));
      await archive.insertInteractions(part);
      fed = at(to);
      const step = await trainer.step();
      expect(step.read).toBe(part.length);
      return step;
    };
    try {
      // The rebuild starts before the look reads its window: the candidate trains on what the
      // live model had seen then, and the live model's micro-epoch goes on (and is published).
      const started = await feed(0.78);
      expect(started.rebuild).toMatchObject({ phase: 'started', trigger: 'schedule' });
      expect(started.published).toBeDefined();
      const below = offsetsOf(rows.slice(0, at(0.74)));
      await trainer.whenRebuildTrained();
      // The next look catches the candidate up on the window it missed, then scores both models
      // on this window (55 examples: past gateExamples) and publishes the candidate.
      const decided = await feed(0.86);
      expect(decided.rebuild).toMatchObject({ phase: 'decided', decision: 'published' });
      // The catch-up reported its progress (the trainer CLI's heartbeat) within the look.
      expect(progress.at(-1)).toBe(`full rebuild ${(decided.rebuild as { rebuildId: string }).rebuildId} catching up: ${at(0.78) - at(0.74)} interactions`);
      expect(decided.published?.version).toBeDefined(); // the live model's own micro-epoch came first
      const published = (await registry.live()) as NonNullable<Awaited<ReturnType<typeof registry.live>>>;
      expect(decided.rebuild?.phase === 'decided' && decided.rebuild.version).toBe(published.version);
      expect(published.version).toBe((decided.published?.version as number) + 1);
      expect(trainer.liveVersion.version).toBe(published.version);
      // Trained exactly below the position at the start, published at the live position.
      const trainedCandidate = (await parentOf(published.checkpointId)) as string;
      expect(await streamOf(trainedCandidate)).toEqual(below);
      expect(await streamOf(published.checkpointId)).toEqual(offsetsOf(rows.slice(0, at(0.86))));
      expect(trainer.streamOffsets).toEqual(offsetsOf(rows.slice(0, at(0.86))));
      // New codebooks: the live lineage is the rebuild's from here on.
      const ownAfter = (await liveSemanticIds()) as string;
      expect(ownAfter).not.toBe(ownBefore);
      expect((await catalogDrift(store, ownAfter)).rebuild.id).toBe(ownAfter);

      // The trainer continues the candidate: its next micro-epoch is published on top of it.
      const next = await feed(1);
      expect(next.published?.version).toBe(published.version + 1);
      expect(await parentOf(next.checkpointId as string)).toBe(published.checkpointId);
    } finally {
      await trainer.close();
    }
    const [row] = await ch.query<Record<string, string | number | null>>(`SELECT * FROM ${ch.table('live_rebuilds')} FINAL WHERE decision = 'published'`);
    expect(row).toMatchObject({ trigger: 'schedule', margin: 1, gate_windows: 1 });
    // Every event the live model read after the rebuild started was trained into the candidate
    // once: the missed window caught up, this one in its own micro-epoch beside the live model's.
    expect(Number(row?.catch_up_events)).toBe(at(0.78) - at(0.74));
    const [shadow] = await ch.query<{ events: string; n: string }>(
      `SELECT sum(events) AS events, count() AS n FROM ${ch.table('micro_epochs')} FINAL WHERE method = 'rebuild' AND run_id = {run:String}`,
      { run: row?.run_id },
    );
    expect([Number(shadow?.n), Number(shadow?.events)]).toEqual([1, at(0.86) - at(0.78)]);
    expect(Number(row?.gate_examples)).toBeGreaterThanOrEqual(20);
    expect(Number(row?.candidate_value)).toBeGreaterThan(0);
  }, 300_000);
});
