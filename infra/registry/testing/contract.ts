import { RegistryError } from '../../../errors';
import type { CheckpointLookup, ModelRegistry, PublishEvaluation, PublishedModel } from '../modelRegistry';

/** Checkpoint ids the contract's lookup knows (anything else "is not in the store"). */
export const KNOWN = {
  a: 'checkpoint-00000000000000aa',
  b: 'checkpoint-00000000000000bb',
  c: 'checkpoint-00000000000000cc',
} as const;

export const contractLookup: CheckpointLookup = async (id) => {
  if (id === KNOWN.a || id === KNOWN.c) return { modelType: 'ccfrec' };
  if (id === KNOWN.b) return { modelType: 'sasrec' };
  throw new Error(`no artifact ${id}`);
};

export const EVALUATION: PublishEvaluation = { split: 'test', metrics: { 'recall@10': 0.12, 'ndcg@10': 0.07 }, users: 100, dataset: 'tiny' };

export interface RegistryFixture {
  readonly registry: ModelRegistry;
  cleanup(): Promise<void>;
}

/** Waits until `predicate` holds (polling), failing after `ms`. */
export async function eventually(predicate: () => boolean, ms = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/**
 * The behaviour every {@link ModelRegistry} implementation must have, written once and run on
 * each (`describeModelRegistryContract('directory', () => ...)`). `create` gets the lookup the
 * suite's checkpoints are known by and returns a fresh, empty registry.
 */
export function describeModelRegistryContract(name: string, create: (lookup: CheckpointLookup) => Promise<RegistryFixture>): void {
  describe(`ModelRegistry contract: ${name}`, () => {
    let fixture: RegistryFixture;
    let registry: ModelRegistry;
    beforeEach(async () => {
      fixture = await create(contractLookup);
      registry = fixture.registry;
    });
    afterEach(async () => fixture.cleanup());

    it('is empty before the first publication', async () => {
      await expect(registry.live()).resolves.toBeUndefined();
      await expect(registry.history()).resolves.toEqual([]);
    });

    it('makes each publication the live version, numbered in order, with its evaluation and the version it replaced', async () => {
      const before = Date.now();
      const first = await registry.publish({ checkpointId: KNOWN.a, evaluation: EVALUATION, reason: 'first model' });
      expect(first).toMatchObject({ version: 1, checkpointId: KNOWN.a, modelType: 'ccfrec', evaluation: EVALUATION, reason: 'first model' });
      expect(first.previousVersion).toBeUndefined();
      expect(Date.parse(first.publishedAt)).toBeGreaterThanOrEqual(before - 1000);
      await expect(registry.live()).resolves.toEqual(first);
      const second = await registry.publish({ checkpointId: KNOWN.b, evaluation: { ...EVALUATION, split: 'valid' } });
      expect(second).toMatchObject({ version: 2, checkpointId: KNOWN.b, modelType: 'sasrec', previousVersion: 1 });
      await expect(registry.live()).resolves.toEqual(second);
      // Rolling back is publishing the older checkpoint again: a new version.
      const third = await registry.publish({ checkpointId: KNOWN.a, evaluation: EVALUATION, reason: 'rollback' });
      expect(third).toMatchObject({ version: 3, checkpointId: KNOWN.a, previousVersion: 2 });
      expect((await registry.history()).map((m) => [m.version, m.checkpointId])).toEqual([
        [1, KNOWN.a],
        [2, KNOWN.b],
        [3, KNOWN.a],
      ]);
    });

    it('refuses a checkpoint the store does not hold, and an invalid evaluation, leaving the live version as it was', async () => {
      const first = await registry.publish({ checkpointId: KNOWN.a, evaluation: EVALUATION });
      await expect(registry.publish({ checkpointId: 'checkpoint-0000000000000fff', evaluation: EVALUATION })).rejects.toThrow(
        /cannot publish "checkpoint-0000000000000fff": no artifact checkpoint-0000000000000fff/,
      );
      await expect(registry.publish({ checkpointId: KNOWN.c, evaluation: { ...EVALUATION, metrics: { 'recall@10': Number.NaN } } })).rejects.toThrow(
        /evaluation\.metrics\.recall@10/,
      );
      await expect(registry.publish({ checkpointId: KNOWN.c, evaluation: { ...EVALUATION, users: -1 } })).rejects.toBeInstanceOf(RegistryError);
      await expect(registry.live()).resolves.toEqual(first);
      expect(await registry.history()).toHaveLength(1);
    });

    it('publishes with expectedLiveVersion only while that version is live (a stale publisher fails)', async () => {
      await expect(registry.publish({ checkpointId: KNOWN.a, evaluation: EVALUATION, expectedLiveVersion: 1 })).rejects.toThrow(/expected live version 1, but version 0 is live/);
      const first = await registry.publish({ checkpointId: KNOWN.a, evaluation: EVALUATION, expectedLiveVersion: 0 });
      const second = await registry.publish({ checkpointId: KNOWN.b, evaluation: EVALUATION, expectedLiveVersion: first.version });
      await expect(registry.publish({ checkpointId: KNOWN.c, evaluation: EVALUATION, expectedLiveVersion: first.version })).rejects.toThrow(
        /expected live version 1, but version 2 is live/,
      );
      await expect(registry.live()).resolves.toEqual(second);
    });

    it('numbers concurrent publications without gaps or duplicates', async () => {
      const ids = [KNOWN.a, KNOWN.b, KNOWN.c, KNOWN.a, KNOWN.b, KNOWN.c];
      const published = await Promise.all(ids.map((checkpointId) => registry.publish({ checkpointId, evaluation: EVALUATION })));
      expect(published.map((p) => p.version).sort((x, y) => x - y)).toEqual([1, 2, 3, 4, 5, 6]);
      const history = await registry.history();
      expect(history.map((m) => m.version)).toEqual([1, 2, 3, 4, 5, 6]);
      for (const m of history.slice(1)) expect(m.previousVersion).toBe(m.version - 1);
      expect((await registry.live())?.version).toBe(6);
    });

    it('tells a watcher about later live versions (not the one live when it started), in order, until stopped', async () => {
      await registry.publish({ checkpointId: KNOWN.a, evaluation: EVALUATION });
      const seen: PublishedModel[] = [];
      const stop = registry.watch((m) => seen.push(m), { pollMs: 20 });
      await new Promise((resolve) => setTimeout(resolve, 60));
      expect(seen).toEqual([]);
      await registry.publish({ checkpointId: KNOWN.b, evaluation: EVALUATION });
      await eventually(() => seen.some((m) => m.version === 2), 5000, 'version 2');
      await registry.publish({ checkpointId: KNOWN.c, evaluation: EVALUATION });
      await eventually(() => seen.some((m) => m.version === 3), 5000, 'version 3');
      const versions = seen.map((m) => m.version);
      expect(versions).toEqual([...versions].sort((x, y) => x - y));
      expect(seen.at(-1)?.checkpointId).toBe(KNOWN.c);
      stop();
      const count = seen.length;
      await registry.publish({ checkpointId: KNOWN.a, evaluation: EVALUATION });
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(seen).toHaveLength(count);
    });

    it('keeps watching after a listener throws (the error goes to onError), and stops on abort', async () => {
      const errors: unknown[] = [];
      const seen: number[] = [];
      const controller = new AbortController();
      registry.watch(
        (m) => {
          seen.push(m.version);
          if (m.version === 1) throw new Error('listener bug');
        },
        { pollMs: 20, signal: controller.signal, onError: (e) => errors.push(e) },
      );
      await registry.publish({ checkpointId: KNOWN.a, evaluation: EVALUATION });
      await eventually(() => seen.includes(1), 5000, 'version 1');
      await registry.publish({ checkpointId: KNOWN.b, evaluation: EVALUATION });
      await eventually(() => seen.includes(2), 5000, 'version 2');
      expect(errors).toHaveLength(1);
      expect((errors[0] as Error).message).toBe('listener bug');
      controller.abort();
      await registry.publish({ checkpointId: KNOWN.c, evaluation: EVALUATION });
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(seen).toEqual([1, 2]);
    });
  });
}
