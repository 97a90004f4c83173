import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ArtifactStore, jsonFile } from '../artifacts';
import { DirectoryModelRegistry } from './directory';
import { MemoryModelRegistry } from './memory';
import { openModelRegistry, storeCheckpoints } from './open';
import { EVALUATION, KNOWN, contractLookup, describeModelRegistryContract, eventually } from './testing/contract';

describeModelRegistryContract('memory', async (lookup) => ({ registry: new MemoryModelRegistry(lookup), cleanup: async () => undefined }));

describeModelRegistryContract('directory', async (lookup) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'streamrec-registry-'));
  return { registry: new DirectoryModelRegistry(path.join(dir, 'registry'), lookup), cleanup: () => rm(dir, { recursive: true, force: true }) };
});

describe('DirectoryModelRegistry (shared by processes)', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'streamrec-registry-'));
  });
  afterEach(async () => rm(dir, { recursive: true, force: true }));

  it('is one registry for every instance on the directory: a watcher on one sees what another publishes', async () => {
    const a = new DirectoryModelRegistry(dir, contractLookup);
    const b = new DirectoryModelRegistry(dir, contractLookup);
    const seen: number[] = [];
    const stop = b.watch((m) => seen.push(m.version), { pollMs: 20 });
    await a.publish({ checkpointId: KNOWN.a, evaluation: EVALUATION });
    await eventually(() => seen.includes(1), 5000, 'version 1 on b');
    expect((await b.live())?.checkpointId).toBe(KNOWN.a);
    const second = await b.publish({ checkpointId: KNOWN.b, evaluation: EVALUATION, expectedLiveVersion: 1 });
    expect(second.previousVersion).toBe(1);
    await expect(a.live()).resolves.toEqual(second);
    stop();
  });

  it('takes publications from another process (the live pointer is a file, replaced atomically)', async () => {
    const registry = new DirectoryModelRegistry(dir, contractLookup);
    const seen: string[] = [];
    const stop = registry.watch((m) => seen.push(m.checkpointId), { pollMs: 50 });
    const script = `
      const { DirectoryModelRegistry } = require(${JSON.stringify(path.join(__dirname, 'directory.ts'))});
      const lookup = async () => ({ modelType: 'ccfrec' });
      new DirectoryModelRegistry(${JSON.stringify(dir)}, lookup)
        .publish({ checkpointId: ${JSON.stringify(KNOWN.c)}, evaluation: ${JSON.stringify(EVALUATION)} })
        .then((m) => process.stdout.write(String(m.version)), (e) => { process.stderr.write(String(e)); process.exit(1); });`;
    const child = spawn(process.execPath, ['--require', 'tsx/cjs', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, STREAMREC_LOG_LEVEL: 'silent' } });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect({ code, err }).toEqual({ code: 0, err: '' });
    expect(out).toBe('1');
    await eventually(() => seen.includes(KNOWN.c), 5000, 'the other process\'s publication');
    expect(JSON.parse(await readFile(path.join(dir, 'LIVE'), 'utf8'))).toEqual({ version: 1 });
    stop();
  }, 30_000);

  it('does not take a record whose publisher crashed before moving the live pointer for live, and numbers past it', async () => {
    const registry = new DirectoryModelRegistry(dir, contractLookup);
    const first = await registry.publish({ checkpointId: KNOWN.a, evaluation: EVALUATION });
    // A publisher that wrote version 2's record and died before LIVE moved.
    const orphan = { ...first, version: 2, checkpointId: KNOWN.b, previousVersion: 1 };
    await writeFile(path.join(dir, 'versions', '000002.json'), JSON.stringify(orphan));
    await expect(registry.live()).resolves.toEqual(first);
    const next = await registry.publish({ checkpointId: KNOWN.c, evaluation: EVALUATION });
    expect(next).toMatchObject({ version: 3, previousVersion: 1 });
    expect((await registry.history()).map((m) => m.version)).toEqual([1, 2, 3]);
  });

  it('removes a publish lock left by a crashed publisher once it is stale, and waits for a live one', async () => {
    const registry = new DirectoryModelRegistry(dir, contractLookup, { staleLockMs: 1000, lockTimeoutMs: 300 });
    await registry.publish({ checkpointId: KNOWN.a, evaluation: EVALUATION });
    const lock = path.join(dir, 'publish.lock');
    await writeFile(lock, '{"pid":1}');
    await expect(registry.publish({ checkpointId: KNOWN.b, evaluation: EVALUATION })).rejects.toThrow(/another publication holds .*publish\.lock for more than 300 ms/);
    const old = new Date(Date.now() - 5000);
    await utimes(lock, old, old);
    await expect(registry.publish({ checkpointId: KNOWN.b, evaluation: EVALUATION })).resolves.toMatchObject({ version: 2 });
  });

  it('says what is wrong with a corrupt live pointer or record', async () => {
    const registry = new DirectoryModelRegistry(dir, contractLookup);
    await registry.publish({ checkpointId: KNOWN.a, evaluation: EVALUATION });
    await writeFile(path.join(dir, 'LIVE'), '{"version": "one"}');
    await expect(registry.live()).rejects.toThrow(/LIVE must hold \{"version": <positive integer>\}, got \{"version": "one"\}/);
    await writeFile(path.join(dir, 'LIVE'), '{"version": 1}');
    await writeFile(path.join(dir, 'versions', '000001.json'), '{"version": 1, "checkpointId": "nope"}');
    await expect(registry.live()).rejects.toThrow(/publication .*000001\.json is invalid at checkpointId/);
  });
});

describe('openModelRegistry and storeCheckpoints', () => {
  let root: string;
  let store: ArtifactStore;
  beforeAll(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'streamrec-registry-store-'));
    store = new ArtifactStore(path.join(root, 'artifacts'));
  });
  afterAll(async () => rm(root, { recursive: true, force: true }));

  it('picks the implementation from the URL and refuses others', () => {
    expect(openModelRegistry('memory:', contractLookup)).toBeInstanceOf(MemoryModelRegistry);
    const dirRegistry = openModelRegistry(`dir:${root}/r`, contractLookup);
    expect(dirRegistry).toBeInstanceOf(DirectoryModelRegistry);
    expect(dirRegistry.url).toBe(`dir:${root}/r`);
    expect(() => openModelRegistry('s3://bucket', contractLookup)).toThrow('model registry URL: expected dir:<directory> or memory:, got "s3://bucket"');
  });

  it('publishes only intact checkpoints of the store', async () => {
    const checkpoint = await store.write({ kind: 'checkpoint', job: 'test', settings: { modelType: 'sasrec' }, inputs: [], files: [jsonFile('w.json', [1, 2, 3])] });
    const other = await store.write({ kind: 'pca', job: 'test', settings: {}, inputs: [], files: [jsonFile('p.json', [1])] });
    const registry = openModelRegistry(`dir:${root}/registry`, storeCheckpoints(store));
    await expect(registry.publish({ checkpointId: checkpoint.id, evaluation: EVALUATION })).resolves.toMatchObject({ version: 1, modelType: 'sasrec' });
    await expect(registry.publish({ checkpointId: other.id, evaluation: EVALUATION })).rejects.toThrow(/expected a checkpoint id/);
    await expect(registry.publish({ checkpointId: 'checkpoint-1234567890abcdef', evaluation: EVALUATION })).rejects.toThrow(/cannot publish "checkpoint-1234567890abcdef": no artifact at/);
    await writeFile(path.join(checkpoint.dir, 'w.json'), '[1,2,4]');
    await expect(registry.publish({ checkpointId: checkpoint.id, evaluation: EVALUATION })).rejects.toThrow(/does not match its sha256 \(corrupt\)/);
    expect((await registry.live())?.version).toBe(1);
  });
});
