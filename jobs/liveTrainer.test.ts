import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadDataset, type LoadedDataset } from '../datasets';
import { ArtifactStore } from '../infra/artifacts';
import { IngestArchive, openClickHouse, type ClickHouse, type InteractionRow } from '../infra/clickhouse';
import { openModelRegistry, storeCheckpoints, type PublishedModel } from '../infra/registry';
import { tinyArchiveRows, tinyLiveConfig } from '../test/tinyArchive';
import { writeTinyScientific } from '../test/tinyScientific';
import { AppConfig, LiveTrainerConfig } from './config';
import { LiveTrainer, type LiveStep } from './liveTrainer';
import { loadServableModel } from './servable';
import { publishCheckpoint } from './publish';
import { runRebuildJob } from './rebuild';
import { runTrainJob } from './train';
import { trainerConfigFromFlags } from './trainerFlags';

/**
 * The live loop's trainer on an embedded ClickHouse archive: a first CCFRec model trained on the
 * archive records its stream position; the trainer continues it on what is archived afterwards
 * (micro-epoch, checkpoint with the new position, publication), and a trainer started again
 * (after a stop or a crash) reads exactly what the live checkpoint has not seen.
 */
describe('LiveTrainer', () => {
  const root = mkdtempSync(path.join(tmpdir(), 'streamrec-live-'));
  const data = writeTinyScientific(mkdtempSync(path.join(root, 'data-')));
  const config = AppConfig.parse(tinyLiveConfig(root));
  const live = LiveTrainerConfig.parse({ micro: { maxSteps: 5, batchSize: 32, gateMargin: 1, holdoutFraction: 0.2 } });
  const store = new ArtifactStore(config.artifacts.dir);
  const registry = openModelRegistry(config.modelRegistry.url, storeCheckpoints(store));
  let ch: ClickHouse;
  let dataset: LoadedDataset;
  /** Every interaction as an archive row: two partitions (by user), offsets in time order per partition. */
  let rows: InteractionRow[];
  /**
   * `n` interactions of 10 known users with known items (`item` of the index), archived on
   * partition 0 right after `trainer`'s position (offsets from + 0..n-1 past it), `hours` after the
   * last event of `rows`: what a test adds past what the trainer has read.
   */
  const laterRows = (trainer: LiveTrainer, tag: string, hours: number, from: number, n: number, item = (i: number): number => i % 20): InteractionRow[] => {
    const last = rows.at(-1) as InteractionRow;
    const users = [...new Set(rows.map((r) => r.user_id))].slice(0, 10);
    const at = trainer.streamOffsets['interactions/0'] ?? 0;
    return Array.from({ length: n }, (_, j) => ({
      ...last, event_id: `${tag}:${from + j}`, user_id: users[j % 10] as string, item_id: `ITEM${item(from + j)}`, ts: last.ts + hours * 3_600_000 + 1000 * (from + j), partition: 0, offset: at + from + j,
    }));
  };

  beforeAll(async () => {
    ch = await openClickHouse(config.clickhouse);
    dataset = await loadDataset(data);
    const archived = tinyArchiveRows(dataset, 2);
    await new IngestArchive(ch).insertItems(archived.items);
    rows = archived.interactions;
  }, 60_000);
  afterAll(async () => {
    await ch.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('continues the live model from its stream position, publishes micro-epochs, and restarts where the live checkpoint is', async () => {
    const archive = new IngestArchive(ch);
    const cut = Math.floor(rows.length * 0.7);
    await archive.insertInteractions(rows.slice(0, cut));

    // The first model, trained on the archive: its checkpoint records what it saw of the stream.
    await runRebuildJob(config, { source: { kind: 'archive' } });
    const trained = await runTrainJob({ config, trainer: trainerConfigFromFlags(config.trainer, 'ccfrec', {}), source: { kind: 'archive' }, writeRows: false });
    const stateOf = async (id: string) => (await store.open(id)).manifest.settings as { trainingState?: { step: number; moments: unknown[]; stream?: { offsets: Record<string, number>; pending: unknown[] } } };
    const offsetsOf = (part: InteractionRow[]): Record<string, number> => {
      const out: Record<string, number> = {};
      for (const r of part) out[`interactions/${r.partition}`] = Math.max(out[`interactions/${r.partition}`] ?? 0, r.offset + 1);
      return out;
    };
    const first = (await stateOf(trained.checkpointId as string)).trainingState;
    expect(first?.stream?.offsets).toEqual(offsetsOf(rows.slice(0, cut)));
    expect(first?.step).toBeGreaterThan(0);
    expect(first?.moments.length).toBeGreaterThan(0);
    // Each user's last two events below it (the first model's validation and test targets) were
    // not trained on: the checkpoint keeps them to be trained by the first micro-epoch.
    const eventsPerUser = new Map<string, number>();
    for (const r of rows.slice(0, cut)) eventsPerUser.set(r.user_id, (eventsPerUser.get(r.user_id) ?? 0) + 1);
    const untrained = [...eventsPerUser.values()].filter((n) => n >= 3).length * 2;
    expect(untrained).toBeGreaterThan(0);
    expect(first?.stream?.pending).toHaveLength(untrained);
    await publishCheckpoint({ registry, store, checkpoint: trained.checkpointId as string });

    // The replay reservoir starts with what the live model was trained on: every example below
    // its stream position (each user's items after the first), rebuilt from the archive.
    const examplesBelow = (part: InteractionRow[]): number => {
      const perUser = new Map<string, number>();
      for (const r of part) perUser.set(r.user_id, (perUser.get(r.user_id) ?? 0) + 1);
      return [...perUser.values()].reduce((n, c) => n + c - 1, 0);
    };
    const trainer = await LiveTrainer.start({ config, registry, live, writeRows: true });
    expect(trainer.replaySize).toBe(Math.min(live.micro.replayCapacity, examplesBelow(rows.slice(0, cut))));
    expect(trainer.replaySize).toBeGreaterThan(100);
    try {
      // Nothing archived since the first model: no micro-epoch.
      expect((await trainer.step()).read).toBe(0);
      // New interactions arrive: one micro-epoch reads exactly them, and is published.
      const middle = Math.floor(rows.length * 0.85);
      await archive.insertInteractions(rows.slice(cut, middle));
      const step = await trainer.step();
      expect(step.read).toBe(middle - cut);
      expect(step.result?.steps).toBeGreaterThan(0);
      // It trained the first model's untrained rows with the window's examples (less its held-out slice).
      expect(step.result?.trained).toBe(untrained + (step.result?.examples as number) - (step.result?.holdout as number));
      expect(step.published?.version).toBe(2);
      expect(step.published?.evaluation.split).toBe('stream');
      expect(trainer.streamOffsets).toEqual(offsetsOf(rows.slice(0, middle)));
      const manifest = (await store.open(step.checkpointId as string)).manifest;
      expect(manifest.inputs.find((i) => i.role === 'parent_checkpoint')?.artifactId).toBe(trained.checkpointId);
      const second = (await stateOf(step.checkpointId as string)).trainingState;
      expect(second?.stream?.offsets).toEqual(offsetsOf(rows.slice(0, middle)));
      // The held-out slice is kept to be trained next (also after a restart).
      expect(second?.stream?.pending).toHaveLength(step.result?.holdout as number);
      expect(second?.step).toBeGreaterThan(first?.step as number);
      expect((await trainer.step()).read).toBe(0);
    } finally {
      await trainer.close();
    }

    // More arrives; a trainer reads it but dies before publishing (a crash: nothing written).
    await archive.insertInteractions(rows.slice(Math.floor(rows.length * 0.85)));
    const rest = rows.length - Math.floor(rows.length * 0.85);
    const crashed = await LiveTrainer.start({ config, registry, live, writeRows: false });
    expect(crashed.liveVersion.version).toBe(2);
    await crashed.close();
    // The next trainer starts from the live checkpoint's position: it reads exactly the rest, once.
    const again = await LiveTrainer.start({ config, registry, live, writeRows: true });
    // A restarted trainer replays from the start too, not from an empty reservoir.
    expect(again.replaySize).toBe(Math.min(live.micro.replayCapacity, examplesBelow(rows.slice(0, Math.floor(rows.length * 0.85)))));
    try {
      const step = await again.step();
      expect(step.read).toBe(rest);
      expect(step.published?.version).toBe(3);
      expect(again.streamOffsets).toEqual(offsetsOf(rows));
      expect((await again.step()).read).toBe(0);
    } finally {
      await again.close();
    }
    // The rows of the live micro-epochs in ClickHouse: two published ones.
    const written = await ch.query<{ n: string; published: string; margins: number[] }>(
      `SELECT count() AS n, countIf(published_version > 0) AS published, groupUniqArray(gate_margin) AS margins FROM ${ch.table('micro_epochs')} WHERE method = 'live'`,
    );
    // The whole gate decision is in each row: the two values and the margin it allowed.
    expect(written.map((r) => [Number(r.n), Number(r.published), r.margins.map(Number)])).toEqual([[2, 2, [live.micro.gateMargin]]]);
    // Each row has the stream position after its window: where a restart from its checkpoint (a
    // published row's) goes on.
    const marks = await ch.query<{ watermark: Record<string, string> }>(`SELECT watermark FROM ${ch.table('micro_epochs')} FINAL WHERE method = 'live' ORDER BY ended_at`);
    expect(marks.map((r) => Object.fromEntries(Object.entries(r.watermark).map(([k, v]) => [k, Number(v)])))).toEqual([offsetsOf(rows.slice(0, Math.floor(rows.length * 0.85))), offsetsOf(rows)]);
  }, 300_000);

  it('codes catalog items archived after the rebuild, joins them to the model and trains on their interactions', async () => {
    const archive = new IngestArchive(ch);
    const before = (await registry.live())?.version as number;
    const NEW = 4;
    await archive.insertItems(
      Array.from({ length: NEW }, (_, i) => ({
        item_id: `NEW${i}`, ts: Date.now(), title: '', brand: '', categories: [], description: '', features: [],
        meta: `lamp red kit model${200 + i}. Industrial & Scientific lamp supplies. Brand${i % 4}.`, topic: 'catalog', partition: 0, offset: 1000 + i, ingested_at: Date.now(),
      })),
    );
    // Users go on to the new items.
    const last = rows.at(-1) as InteractionRow;
    const users = [...new Set(rows.map((r) => r.user_id))].slice(0, 20);
    const more: InteractionRow[] = Array.from({ length: 40 }, (_, j) => ({
      ...last, event_id: `new:${j}`, user_id: users[j % 20] as string, item_id: `NEW${j % NEW}`, ts: last.ts + 60_000 * (j + 1), partition: 0, offset: 10_000 + j,
    }));
    await archive.insertInteractions(more);
    // Servers load the live version again with the grown catalog: the trainer prepares that first
    // (and every publication, as before).
    const prepared: string[] = [];
    const liveBefore = (await registry.live())?.checkpointId as string;
    const trainer = await LiveTrainer.start({ config, registry, live, writeRows: false, prepare: async (id) => void prepared.push(id) });
    try {
      const step = await trainer.step();
      expect(prepared).toEqual([liveBefore, step.checkpointId]);
      expect(step.newItems).toBe(NEW);
      expect(step.read).toBe(more.length);
      expect(step.unknownItems).toBe(0); // the new items are known by then
      expect(step.result?.examples).toBe(more.length);
      expect(step.published?.version).toBe(before + 1);
    } finally {
      await trainer.close();
    }
    // The published model scores the new items (the catalog it loads with has them).
    const servable = await loadServableModel(store, (await registry.live())?.checkpointId as string, { catalog: 'latest' });
    try {
      // The checkpoint itself was trained over the grown catalog (nothing appended on top of it).
      expect([servable.items.itemCount, servable.trainedItems, servable.appendedItems]).toEqual([dataset.items.length + NEW, dataset.items.length + NEW, 0]);
      for (let i = 0; i < NEW; i++) expect(servable.items.denseId(`NEW${i}`)).toBeDefined();
      const scores = servable.scores(servable.batchOf([['ITEM1', 'NEW0']]));
      const row = scores.dataSync();
      scores.dispose();
      expect(Number.isFinite(row[servable.items.denseId('NEW1') as number] as number)).toBe(true);
    } finally {
      servable.dispose();
    }
  }, 300_000);

  it('looks before its interval is up once wakeEvents interactions are archived past its position, not before', async () => {
    const archive = new IngestArchive(ch);
    const wake = LiveTrainerConfig.parse({ ...live, intervalSeconds: 600, wakeEvents: 30, pollSeconds: 0.1 });
    const trainer = await LiveTrainer.start({ config, registry, live: wake, writeRows: false });
    const steps: number[] = [];
    const stop = new AbortController();
    const until = async (what: () => boolean, ms: number): Promise<boolean> => {
      const end = Date.now() + ms;
      while (!what() && Date.now() < end) await new Promise((resolve) => setTimeout(resolve, 50));
      return what();
    };
    let failed: unknown;
    const running = trainer.run(stop.signal, (step) => void steps.push(step.read)).catch((error: unknown) => void (failed = error));
    try {
      expect(await until(() => steps.length === 1, 30_000)).toBe(true); // the first look, at once
      const more = (from: number, n: number): InteractionRow[] => laterRows(trainer, 'wake', 1, from, n);
      // Fewer than wakeEvents: the trainer goes on waiting for its interval (10 minutes).
      await archive.insertInteractions(more(0, 20));
      expect(await until(() => steps.length > 1, 1500)).toBe(false);
      // wakeEvents reached: it looks within a poll or two and reads all of them.
      await archive.insertInteractions(more(20, 15));
      expect(await until(() => steps.length === 2, 30_000)).toBe(true);
      expect(steps[1]).toBe(35);
      // A count inflated beyond what a look finds (copies of events not merged yet: the count
      // reads without FINAL) wakes one early look that reads nothing; after it the trainer waits
      // for its interval instead of looking at every poll.
      const inflated = jest.spyOn(trainer as unknown as { archivedPast: () => Promise<number> }, 'archivedPast').mockResolvedValue(1000);
      try {
        expect(await until(() => steps.length === 3, 30_000)).toBe(true);
        expect(steps[2]).toBe(0);
        await new Promise((resolve) => setTimeout(resolve, 1500));
        expect(steps).toHaveLength(3);
      } finally {
        inflated.mockRestore();
      }
      // A count that fails (ClickHouse away) is logged; the trainer goes on waiting for its interval.
      const failing = jest.spyOn(trainer as unknown as { archivedPast: () => Promise<number> }, 'archivedPast').mockRejectedValue(new Error('ClickHouse is away'));
      try {
        await new Promise((resolve) => setTimeout(resolve, 1000));
        expect(failed).toBeUndefined();
        expect(steps).toHaveLength(3);
      } finally {
        failing.mockRestore();
      }
    } finally {
      stop.abort();
      await running;
      await trainer.close();
    }
  }, 120_000);

  it('does not overwrite a version someone else published meanwhile (a rollback): it continues that one', async () => {
    const archive = new IngestArchive(ch);
    const trainer = await LiveTrainer.start({ config, registry, live, writeRows: false });
    try {
      const continued = trainer.liveVersion.version;
      // An operator rolls back to the first model while the trainer works on the live version.
      const firstModel = (await registry.history())[0] as PublishedModel;
      const rollback = await publishCheckpoint({ registry, store, checkpoint: firstModel.checkpointId, reason: 'rollback' });
      expect(rollback.published && rollback.model.version).toBe(continued + 1);
      await archive.insertInteractions(laterRows(trainer, 'race', 2, 0, 40));
      // The trainer's micro-epoch continued version `continued`: its publication is refused, the
      // rollback stays live, and the trainer goes on from the rolled-back model's stream position.
      const raced = await trainer.step();
      expect(raced.read).toBe(40);
      expect(raced.published).toBeUndefined();
      expect(raced.notPublished).toMatch(/another publisher was first/);
      expect((await registry.live())?.version).toBe(continued + 1);
      expect(trainer.liveVersion.version).toBe(continued + 1);
      const next = await trainer.step();
      expect(next.read).toBeGreaterThan(40); // all that the first model had not seen, these 40 included
      expect(next.published?.version).toBe(continued + 2);
      const manifest = (await store.open(next.checkpointId as string)).manifest;
      expect(manifest.inputs.find((i) => i.role === 'parent_checkpoint')?.artifactId).toBe(firstModel.checkpointId);
    } finally {
      await trainer.close();
    }
  }, 300_000);

  it('survives a look that fails: continues the live version from its checkpoint and reads the window again, once', async () => {
    const archive = new IngestArchive(ch);
    const settings = LiveTrainerConfig.parse({ ...live, intervalSeconds: 600, wakeEvents: 0, pollSeconds: 0.1, maxFailures: 2 });
    const trainer = await LiveTrainer.start({ config, registry, live: settings, writeRows: false });
    const version = trainer.liveVersion.version;
    await archive.insertInteractions(laterRows(trainer, 'fail', 3, 0, 30, (i) => (i * 7) % 20));
    // The checkpoint write fails once, after the window was absorbed and trained in memory.
    const internals = trainer as unknown as { checkpoint: (...args: unknown[]) => Promise<string>; reload: () => Promise<void> };
    const failedOn: Array<{ examples: number; prequential?: { metrics: Record<string, number> } }> = [];
    const realCheckpoint = internals.checkpoint.bind(trainer);
    const checkpoint = jest.spyOn(internals, 'checkpoint').mockImplementationOnce(async (_state, result) => {
      failedOn.push(result as (typeof failedOn)[number]);
      throw new Error('the artifact store is away');
    });
    checkpoint.mockImplementation(realCheckpoint);
    const reload = jest.spyOn(internals, 'reload');
    const steps: LiveStep[] = [];
    const stop = new AbortController();
    const running = trainer.run(stop.signal, (step) => {
      steps.push(step);
      stop.abort();
    });
    try {
      await running;
      expect(failedOn).toHaveLength(1);
      expect(reload).toHaveBeenCalledTimes(1);
      // The look after it starts again from the live checkpoint: the same window, the same
      // prequential scores (the live weights and histories, not the ones the failed look trained).
      expect(steps).toHaveLength(1);
      expect(steps[0]?.read).toBe(30);
      expect(steps[0]?.result?.examples).toBe(failedOn[0]?.examples);
      expect(steps[0]?.result?.prequential?.metrics).toEqual(failedOn[0]?.prequential?.metrics);
      expect(steps[0]?.published?.version).toBe(version + 1);
    } finally {
      checkpoint.mockRestore();
      reload.mockRestore();
      await trainer.close();
    }
    // maxFailures in a row: the last failure is thrown.
    const strict = await LiveTrainer.start({ config, registry, live: LiveTrainerConfig.parse({ ...settings, maxFailures: 0 }), writeRows: false });
    const away = jest.spyOn(strict as unknown as { look: () => Promise<LiveStep> }, 'look').mockRejectedValue(new Error('ClickHouse is away'));
    try {
      await expect(strict.run(new AbortController().signal)).rejects.toThrow('ClickHouse is away');
    } finally {
      away.mockRestore();
      await strict.close();
    }
  }, 300_000);

  it('after a failed look, the next step() continues the live checkpoint even when run() stopped in its wait', async () => {
    const archive = new IngestArchive(ch);
    const settings = LiveTrainerConfig.parse({ ...live, intervalSeconds: 600, wakeEvents: 0, pollSeconds: 0.1, maxFailures: 2 });
    const trainer = await LiveTrainer.start({ config, registry, live: settings, writeRows: false });
    await archive.insertInteractions(laterRows(trainer, 'stop', 5, 0, 30));
    const internals = trainer as unknown as { checkpoint: (...args: unknown[]) => Promise<string> };
    const failedOn: Array<{ examples: number; prequential?: { metrics: Record<string, number> } }> = [];
    const checkpoint = jest.spyOn(internals, 'checkpoint').mockImplementationOnce(async (_state, result) => {
      failedOn.push(result as (typeof failedOn)[number]);
      throw new Error('the artifact store is away');
    });
    try {
      // Stopped (Ctrl-C) during the wait after the failure: run() returns, the state stays stale.
      const stop = new AbortController();
      await trainer.run(stop.signal, undefined, undefined, () => stop.abort());
      const step = await trainer.step();
      expect(step.read).toBe(30);
      expect(step.result?.prequential?.metrics).toEqual(failedOn[0]?.prequential?.metrics);
      expect(step.published).toBeDefined();
    } finally {
      checkpoint.mockRestore();
      await trainer.close();
    }
  }, 300_000);

  // Last: once marks exist for the topic, every read is capped by them.
  it('reads only below the archive marks: rows a flush left visible past a gap wait until the gap is filled', async () => {
    const archive = new IngestArchive(ch);
    const trainer = await LiveTrainer.start({ config, registry, live, writeRows: false });
    try {
      const at = trainer.streamOffsets['interactions/0'] ?? 0;
      const more = (from: number, n: number): InteractionRow[] => laterRows(trainer, 'gap', 4, from, n);
      await archive.markArchived(Object.entries(trainer.streamOffsets).map(([key, next]) => ({ topic: key.split('/')[0] as string, partition: Number(key.split('/')[1]), nextOffset: next })));
      // A flush's second chunk lands before its first: offsets at+20.. are visible, at..at+19 not yet.
      await archive.insertInteractions(more(20, 20));
      expect((await trainer.step()).read).toBe(0);
      expect(trainer.streamOffsets['interactions/0']).toBe(at);
      // The first chunk lands and the flush marks its end: the trainer reads all 40, none skipped.
      await archive.insertInteractions(more(0, 20));
      await archive.markArchived([{ topic: 'interactions', partition: 0, nextOffset: at + 40 }]);
      const step = await trainer.step();
      expect(step.read).toBe(40);
      expect(trainer.streamOffsets['interactions/0']).toBe(at + 40);
    } finally {
      await trainer.close();
    }
  }, 300_000);
});
