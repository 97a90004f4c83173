import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DirectoryModelRegistry, MemoryModelRegistry, type ModelRegistry, type PublishEvaluation, type PublishedModel } from '../infra/registry';
import { ModelHolder } from './modelHolder';
import type { ModelVersion } from './modelVersion';

/**
 * The holder's swap queue with stand-in versions (what it reads of a version: its publication,
 * leases, retire) and loads the test opens when it wants: the order of registry reads, watch
 * reports, loads and close.
 */

const EVAL: PublishEvaluation = { split: 'test', metrics: { 'ndcg@10': 0.1 }, users: 10 };
const lookup = async (): Promise<{ modelType: 'ccfrec' }> => ({ modelType: 'ccfrec' });
const checkpoint = (n: number): string => `checkpoint-${n.toString(16).padStart(16, '0')}`;

interface StandIn {
  readonly published: PublishedModel;
  retired: boolean;
}

/** A holder whose loads end when the test opens them (`open(version)`), or at once for versions not held. */
function gatedHolder(held: readonly number[] = []) {
  const loaded: StandIn[] = [];
  const gates = new Map<number, { opened: Promise<void>; open: () => void; started: boolean }>();
  for (const version of held) {
    let open!: () => void;
    const opened = new Promise<void>((resolve) => (open = resolve));
    gates.set(version, { opened, open, started: false });
  }
  const holder = new ModelHolder(async (published) => {
    const gate = gates.get(published.version);
    if (gate) {
      gate.started = true;
      await gate.opened;
    }
    const version: StandIn = { published, retired: false };
    loaded.push(version);
    return {
      published,
      loadTimings: {},
      inFlight: 0,
      acquire: () => () => undefined,
      retire: () => void (version.retired = true),
    } as unknown as ModelVersion;
  });
  return {
    holder,
    loaded,
    started: (version: number): boolean => gates.get(version)?.started ?? false,
    open: (version: number): void => gates.get(version)?.open(),
  };
}

/** `registry` with a `live()` that reads at once and answers when `answer` settles; `read` settles at the read. */
function slowLive(registry: ModelRegistry, answer: Promise<void>): { registry: ModelRegistry; read: Promise<void> } {
  let onRead!: () => void;
  const read = new Promise<void>((resolve) => (onRead = resolve));
  return {
    read,
    registry: {
      url: registry.url,
      publish: (request) => registry.publish(request),
      history: () => registry.history(),
      watch: (listener, options) => registry.watch(listener, options),
      live: async () => {
        const live = await registry.live();
        onRead();
        await answer;
        return live;
      },
    },
  };
}

async function eventually(predicate: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('ModelHolder', () => {
  const root = mkdtempSync(path.join(tmpdir(), 'streamrec-holder-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  const registries: Array<[string, () => ModelRegistry]> = [
    ['memory', () => new MemoryModelRegistry(lookup)],
    ['directory', () => new DirectoryModelRegistry(mkdtempSync(path.join(root, 'registry-')), lookup)],
  ];
  it.each(registries)('follow (%s registry): a version published while the first load is under way is swapped to after it', async (_, create) => {
    const registry = create();
    await registry.publish({ checkpointId: checkpoint(1), evaluation: EVAL });
    const { holder, started, open } = gatedHolder([1]);
    const following = holder.follow(registry, { pollMs: 20 });
    try {
      await eventually(() => started(1), 'the first load to start');
      // The watch of a directory registry reads the version live when it starts: give it the time to.
      await new Promise((resolve) => setTimeout(resolve, 100));
      await registry.publish({ checkpointId: checkpoint(2), evaluation: EVAL });
      open(1);
      expect(await following.first).toEqual({ kind: 'swapped', from: undefined, to: 1 });
      await eventually(() => holder.current?.published.version === 2, 'version 2 to be served');
    } finally {
      following.stop();
      await holder.close();
    }
  });

  it('reads the registry in the check\'s turn of the swap queue: a read older than a version swapped in since never swaps back', async () => {
    const registry = new MemoryModelRegistry(lookup);
    await registry.publish({ checkpointId: checkpoint(1), evaluation: EVAL });
    const { holder } = gatedHolder();
    expect((await holder.syncWith(registry)).kind).toBe('swapped');
    // A registry check (an announcement's) reads version 1 and answers late; meanwhile version 2
    // is published and reported (the watch's swapTo).
    let answer!: () => void;
    const slow = slowLive(registry, new Promise<void>((resolve) => (answer = resolve)));
    const check = holder.syncWith(slow.registry);
    await slow.read;
    const v2 = await registry.publish({ checkpointId: checkpoint(2), evaluation: EVAL });
    const report = holder.swapTo(v2);
    answer();
    expect(await check).toEqual({ kind: 'unchanged', version: 1 });
    expect(await report).toEqual({ kind: 'swapped', from: 1, to: 2 });
    expect(holder.current?.published.version).toBe(2);
    await holder.close();
  });

  it('swaps back to an older version the registry names live (a rollback), never to an older one only reported', async () => {
    const records = new MemoryModelRegistry(lookup);
    const v1 = await records.publish({ checkpointId: checkpoint(1), evaluation: EVAL });
    const v2 = await records.publish({ checkpointId: checkpoint(2), evaluation: EVAL });
    let live = v2;
    const registry: ModelRegistry = { url: 'test:', publish: (r) => records.publish(r), history: () => records.history(), watch: () => () => undefined, live: async () => live };
    const { holder, loaded } = gatedHolder();
    expect(await holder.syncWith(registry)).toEqual({ kind: 'swapped', from: undefined, to: 2 });
    expect(await holder.swapTo(v1)).toEqual({ kind: 'unchanged', version: 2 });
    live = v1; // the live pointer moved back
    expect(await holder.syncWith(registry)).toEqual({ kind: 'swapped', from: 2, to: 1 });
    expect(loaded.map((v) => [v.published.version, v.retired])).toEqual([
      [2, true],
      [1, false],
    ]);
    await holder.close();
  });

  it('a failed catalog reload counts as one, not as a failed swap: the version it reloaded can still be swapped back to (a rollback)', async () => {
    const records = new MemoryModelRegistry(lookup);
    const v1 = await records.publish({ checkpointId: checkpoint(1), evaluation: EVAL });
    const v2 = await records.publish({ checkpointId: checkpoint(2), evaluation: EVAL });
    let live = v1;
    const registry: ModelRegistry = { url: 'test:', publish: (r) => records.publish(r), history: () => records.history(), watch: () => () => undefined, live: async () => live };
    let failNext = false;
    const holder = new ModelHolder(async (published) => {
      if (failNext) {
        failNext = false;
        throw new Error('injected: the grown catalog cannot be read');
      }
      return { published, loadTimings: {}, inFlight: 0, acquire: () => () => undefined, retire: () => undefined } as unknown as ModelVersion;
    });
    expect(await holder.syncWith(registry)).toEqual({ kind: 'swapped', from: undefined, to: 1 });
    failNext = true;
    expect(await holder.reloadCatalog()).toMatchObject({ kind: 'failed', version: 1 });
    expect({ failedSwaps: holder.failedSwaps, failedCatalogReloads: holder.failedCatalogReloads, serving: holder.current?.published.version }).toEqual({ failedSwaps: 0, failedCatalogReloads: 1, serving: 1 });
    live = v2;
    expect(await holder.syncWith(registry)).toEqual({ kind: 'swapped', from: 1, to: 2 });
    live = v1;
    expect(await holder.syncWith(registry)).toEqual({ kind: 'swapped', from: 2, to: 1 });
    await holder.close();
  });

  it('close disposes a version whose load ends after it, loads nothing queued behind it, and resolves after the load', async () => {
    const registry = new MemoryModelRegistry(lookup);
    const v1 = await registry.publish({ checkpointId: checkpoint(1), evaluation: EVAL });
    const v2 = await registry.publish({ checkpointId: checkpoint(2), evaluation: EVAL });
    const { holder, loaded, started, open } = gatedHolder([1]);
    const first = holder.swapTo(v1);
    const queued = holder.swapTo(v2);
    await eventually(() => started(1), 'the load of version 1 to start');
    let closed = false;
    const closing = holder.close().then(() => (closed = true));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(closed).toBe(false); // the load of version 1 is still under way
    open(1);
    await closing;
    expect(await first).toEqual({ kind: 'unchanged', version: undefined });
    expect(await queued).toEqual({ kind: 'unchanged', version: undefined });
    expect(holder.current).toBeUndefined();
    expect(loaded.map((v) => [v.published.version, v.retired])).toEqual([[1, true]]);
    expect(holder.swaps).toBe(0);
  });
});
