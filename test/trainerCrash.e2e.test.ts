import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { loadDataset } from '../datasets';
import { ArtifactStore } from '../infra/artifacts';
import { IngestArchive, openClickHouse } from '../infra/clickhouse';
import { openModelRegistry, storeCheckpoints } from '../infra/registry';
import { AppConfig, publishCheckpoint, runRebuildJob, runTrainJob, trainerConfigFromFlags } from '../jobs';
import { exited, runCli, spawnCli } from './cli';
import { tinyArchiveRows, tinyLiveConfig } from './tinyArchive';
import { writeTinyScientific } from './tinyScientific';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface CheckpointState {
  trainingState?: { stream?: { offsets: Record<string, number>; pending: unknown[] } };
}

/**
 * Restart safety of `streamrec trainer`: a backlog of archived interactions is worked off in small
 * micro-epochs; three trainers in turn are SIGKILLed at different points after a publication (at
 * once, in the next micro-epoch, later) and a fourth works off the rest. The published lineage
 * must be one chain (each version's checkpoint the child of the one before), its stream positions
 * strictly increasing, the last one covering every archived interaction (nothing skipped, nothing
 * read into it twice), and every restarted trainer must have continued the version live when the
 * one before it died and published on top of it.
 */
describe('streamrec trainer killed and restarted', () => {
  const root = mkdtempSync(path.join(tmpdir(), 'streamrec-trainer-crash-'));
  const data = writeTinyScientific(mkdtempSync(path.join(root, 'data-')), { users: 160 });
  const configFile = path.join(root, 'config.json');
  const raw = {
    ...tinyLiveConfig(root),
    // Small micro-epochs: the backlog takes several, so there is a middle to be killed in.
    live: { intervalSeconds: 1, maxEvents: 60, micro: { maxSteps: 4, batchSize: 32, gateMargin: 1, holdoutFraction: 0.2 } },
  };
  writeFileSync(configFile, JSON.stringify(raw));
  const config = AppConfig.parse(raw);
  const store = new ArtifactStore(config.artifacts.dir);
  const registry = openModelRegistry(config.modelRegistry.url, storeCheckpoints(store));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('publishes one unbroken lineage that covers every interaction exactly once', async () => {
    const dataset = await loadDataset(data);
    const { items, interactions: rows, nextOffsets: everything } = tinyArchiveRows(dataset, 3);
    const cut = Math.floor(rows.length * 0.5);

    // The first model on half of the archive, published; then the rest is archived (the backlog).
    const ch = await openClickHouse(config.clickhouse);
    const archive = new IngestArchive(ch);
    await archive.insertItems(items);
    await archive.insertInteractions(rows.slice(0, cut));
    await runRebuildJob(config, { source: { kind: 'archive' } });
    const trained = await runTrainJob({ config, trainer: trainerConfigFromFlags(config.trainer, 'ccfrec', {}), source: { kind: 'archive' }, writeRows: false });
    await publishCheckpoint({ registry, store, checkpoint: trained.checkpointId as string });
    await archive.insertInteractions(rows.slice(cut));
    await ch.close();

    // Three trainers, each SIGKILLed a while after its first publication (0, 150, 400 ms: at the
    // next micro-epoch's start, in it, or in its checkpoint and publication).
    const liveVersion = async (): Promise<number> => (await registry.live())?.version as number;
    const killedAt: number[] = [];
    for (const extra of [0, 150, 400]) {
      const before = await liveVersion();
      const trainer = spawnCli(['--config', configFile, 'trainer', '--no-clickhouse']);
      const deadline = Date.now() + 120_000;
      while (!/published as version \d+/.test(trainer.output()) && trainer.exitCode === null && Date.now() < deadline) await sleep(20);
      expect(trainer.output()).toMatch(/published as version \d+/);
      await sleep(extra);
      trainer.kill('SIGKILL');
      await exited(trainer);
      expect(trainer.output()).toMatch(new RegExp(`continuing version ${killedAt.at(-1) ?? before} `));
      killedAt.push(await liveVersion());
      expect(killedAt.at(-1)).toBeGreaterThan(before);
    }

    // The last trainer: works off the rest from the live checkpoint's position, then stops on SIGTERM.
    const heartbeatFile = path.join(root, 'trainer.alive');
    const second = spawnCli(['--config', configFile, 'trainer', '--no-clickhouse', '--heartbeat-file', heartbeatFile, '--metrics-port', '0']);
    const stateOf = async (checkpointId: string): Promise<CheckpointState> => (await store.open(checkpointId)).manifest.settings as CheckpointState;
    let live = await registry.live();
    const until = Date.now() + 180_000;
    while (Date.now() < until && second.exitCode === null) {
      live = await registry.live();
      if (live && isDeepStrictEqual((await stateOf(live.checkpointId)).trainingState?.stream?.offsets, everything)) break;
      await sleep(500);
    }
    // Its Prometheus metrics, read before it stops: it published on top of the last kill and is
    // behind by nothing (it has read everything archived).
    const metricsUrl = /trainer metrics on (http:\/\/\S+\/metrics)/.exec(second.output())?.[1];
    expect(metricsUrl).toBeDefined();
    let metricsText = '';
    for (let tries = 0; tries < 50 && !/streamrec_trainer_behind_interactions 0\n/.test(metricsText); tries++) {
      metricsText = await (await fetch(metricsUrl as string)).text();
      await sleep(200);
    }
    const value = (series: string): number => Number(new RegExp(`^${series.replace(/[{}"]/g, '\\$&')} (\\S+)$`, 'm').exec(metricsText)?.[1]);
    expect(value('streamrec_trainer_micro_epochs_total{outcome="published"}')).toBeGreaterThanOrEqual(1);
    expect(value('streamrec_trainer_live_version')).toBe((await registry.live())?.version);
    expect(value('streamrec_trainer_behind_interactions')).toBe(0);
    expect(value('streamrec_trainer_look_failures_total')).toBe(0);
    second.kill('SIGTERM');
    const { code } = await exited(second);
    if (code !== 0) throw new Error(`the last trainer exited with ${code}:\n${second.output().slice(-3000)}`);
    expect(second.output()).toMatch(new RegExp(`continuing version ${killedAt.at(-1)} `));
    expect(live?.version).toBeGreaterThan(killedAt.at(-1) as number); // it published on top of the last kill
    expect(second.output()).not.toMatch(/MaxListenersExceeded/);
    // Its heartbeat was written by its looks.
    expect(readFileSync(heartbeatFile, 'utf8')).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z (looked: \d+ interactions read|waiting for the next look)\n$/);

    // The lineage: versions 1..n, each checkpoint the child of the one before, positions strictly increasing, the last one everything.
    const history = await registry.history();
    expect(history.length).toBeGreaterThanOrEqual(5);
    let previous: Record<string, number> | undefined;
    for (const [i, version] of history.entries()) {
      const manifest = (await store.open(version.checkpointId)).manifest;
      if (i > 0) expect(manifest.inputs.find((input) => input.role === 'parent_checkpoint')?.artifactId).toBe(history[i - 1]?.checkpointId);
      const offsets = (manifest.settings as CheckpointState).trainingState?.stream?.offsets as Record<string, number>;
      if (previous) {
        const grew = Object.keys(everything).some((k) => (offsets[k] ?? 0) > (previous?.[k] ?? 0));
        const shrank = Object.keys(everything).some((k) => (offsets[k] ?? 0) < (previous?.[k] ?? 0));
        expect([grew, shrank]).toEqual([true, false]);
      }
      previous = offsets;
    }
    expect(previous).toEqual(everything);
    expect(history[0]?.checkpointId).toBe(trained.checkpointId);
  }, 420_000);

  it('refuses a heartbeat file it cannot write and a metrics port in use, naming the flag and the path or port', async () => {
    const nowhere = path.join(root, 'no-such-dir', 'trainer.alive');
    const { code, output } = await runCli(['--config', configFile, 'trainer', '--once', '--no-clickhouse', '--heartbeat-file', nowhere]);
    expect(code).not.toBe(0);
    expect(output).toContain(`--heartbeat-file: cannot write ${nowhere}: ENOENT`);
    // A metrics port in use: a clear error naming the flag, not an uncaught exception.
    const busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '0.0.0.0', () => resolve()));
    try {
      const port = (busy.address() as AddressInfo).port;
      const taken = await runCli(['--config', configFile, 'trainer', '--once', '--no-clickhouse', '--metrics-port', String(port)]);
      expect(taken.code).not.toBe(0);
      expect(taken.output).toContain(`--metrics-port ${port}: cannot listen: listen EADDRINUSE`);
      expect(taken.output).not.toMatch(/Uncaught|uncaughtException/);
    } finally {
      busy.close();
    }
  }, 60_000);

  it('--wait-for-model waits for the first publication (then continues it), and stops cleanly on SIGTERM while it waits', async () => {
    const waitFor = async (child: ReturnType<typeof spawnCli>, pattern: RegExp): Promise<void> => {
      const deadline = Date.now() + 60_000;
      while (!pattern.test(child.output()) && child.exitCode === null && Date.now() < deadline) await sleep(50);
      expect(child.output()).toMatch(pattern);
    };
    // Stopped while waiting.
    const idle = spawnCli(['--config', configFile, 'trainer', '--wait-for-model', '--registry', path.join(root, 'empty-registry'), '--no-clickhouse']);
    await waitFor(idle, /no live model in dir:.*empty-registry yet: waiting for the first publication/);
    await sleep(1500);
    expect(idle.exitCode).toBeNull(); // still waiting
    idle.kill('SIGTERM');
    expect((await exited(idle)).code).toBe(0);
    expect(idle.output()).toMatch(/live trainer stopped/);
    // A publication arrives while it waits (the registry of the test above appears): it continues that version.
    const later = path.join(root, 'later-registry');
    const waiting = spawnCli(['--config', configFile, 'trainer', '--wait-for-model', '--registry', later, '--no-clickhouse']);
    await waitFor(waiting, /waiting for the first publication/);
    cpSync(path.join(root, 'registry'), later, { recursive: true });
    await waitFor(waiting, /continuing version \d+/);
    waiting.kill('SIGTERM');
    expect((await exited(waiting)).code).toBe(0);
  }, 180_000);
});
