import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { getPriority, tmpdir } from 'node:os';
import path from 'node:path';
import { ConfigError } from '../errors';
import { AppConfig, withOverrides } from '../jobs';
import { TrainerThread, TrainerThreadError } from './trainerThread';

describe('TrainerThread', () => {
  const root = mkdtempSync(path.join(tmpdir(), 'streamrec-trainer-thread-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  const config = withOverrides(AppConfig.parse({}), {
    clickhouse: { url: `chdb:${path.join(root, 'ch')}` },
    artifacts: { dir: path.join(root, 'artifacts'), registryFile: path.join(root, 'artifacts', 'item-registry.json') },
    modelRegistry: { url: `dir:${path.join(root, 'registry')}` },
  });

  it('refuses a memory: registry, which the server on the other thread would not see', () => {
    expect(() => new TrainerThread(withOverrides(config, { modelRegistry: { url: 'memory:' } }))).toThrow(ConfigError);
  });

  it('reports what failed on the thread (no live model to continue; nothing archived to bootstrap from) and stays usable for the next request', async () => {
    const thread = new TrainerThread(config);
    try {
      const stop = new AbortController();
      const live = thread.run(config.live, stop.signal);
      await expect(live).rejects.toThrow(TrainerThreadError);
      await expect(live).rejects.toThrow(/the live trainer needs a live model/);
    } finally {
      await thread.close();
    }
  });

  (process.platform === 'linux' ? it : it.skip)('runs at live.niceness (Linux), below the thread that ingests and serves', async () => {
    // On Linux getpriority takes a thread id.
    const niceOf = (threadId: string): number => getPriority(Number(threadId));
    const before = niceOf(String(process.pid));
    const niceness = Math.min(19, before + 9);
    const thread = new TrainerThread(withOverrides(config, { live: { niceness } }));
    try {
      // Once it has answered a request, the thread has set its priority (first thing it does).
      await expect(thread.run(config.live, new AbortController().signal)).rejects.toThrow(TrainerThreadError);
      const niced = readdirSync(`/proc/${process.pid}/task`).filter((t) => niceOf(t) === niceness);
      expect(niced.length).toBeGreaterThanOrEqual(1);
      expect(niced).not.toContain(String(process.pid));
      expect(niceOf(String(process.pid))).toBe(before);
    } finally {
      await thread.close();
    }
  });

  it('answers a bootstrap asked after the stop with nothing, and one stopped mid-way by closing the thread', async () => {
    const thread = new TrainerThread(config);
    try {
      const stopped = new AbortController();
      stopped.abort();
      await expect(thread.bootstrap('ccfrec', 1, stopped.signal)).resolves.toBeUndefined();
      const stop = new AbortController();
      const first = thread.bootstrap('ccfrec', 1, stop.signal);
      stop.abort();
      await expect(first).resolves.toBeUndefined();
    } finally {
      await thread.close();
    }
  });
});
