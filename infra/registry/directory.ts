import { watch as watchFs, type FSWatcher, promises as fs } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import { RegistryError } from '../../errors';
import { createLogger } from '../../logging';
import { writeFileAtomic } from '../artifacts';
import { PublishedModel, nextPublication, type CheckpointLookup, type ModelRegistry, type PublishRequest, type WatchOptions } from './modelRegistry';

const log = createLogger('infra.registry');

export interface DirectoryRegistryOptions {
  /** How long a publisher waits for another's lock before failing (ms). */
  readonly lockTimeoutMs?: number;
  /** A lock older than this is taken to be left by a crashed publisher and removed (ms). */
  readonly staleLockMs?: number;
}

const VERSION_FILE = /^(\d{6,})\.json$/;

/**
 * A model registry in a directory, shared by every process on the host:
 *
 *     <dir>/versions/000001.json   one immutable record per publication
 *     <dir>/LIVE                   {"version": n}: the live pointer, replaced atomically (rename)
 *     <dir>/publish.lock           held while a publication is written (exclusive create)
 *
 * A publication writes its record, then moves the live pointer; readers read the pointer, then
 * the record it names, so they see the old version or the new one, never a mix. A publisher that
 * crashes between the two leaves a record that never went live (listed by `history`, never
 * returned by `live`); the next publication takes the next number.
 */
export class DirectoryModelRegistry implements ModelRegistry {
  readonly url: string;
  private readonly versionsDir: string;
  private readonly liveFile: string;
  private readonly lockFile: string;

  constructor(
    readonly dir: string,
    private readonly lookup: CheckpointLookup,
    private readonly options: DirectoryRegistryOptions = {},
  ) {
    this.url = `dir:${dir}`;
    this.versionsDir = path.join(dir, 'versions');
    this.liveFile = path.join(dir, 'LIVE');
    this.lockFile = path.join(dir, 'publish.lock');
  }

  async publish(request: PublishRequest): Promise<PublishedModel> {
    await fs.mkdir(this.versionsDir, { recursive: true });
    await this.lock();
    try {
      const record = await nextPublication(request, await this.live(), await this.lastVersion(), this.lookup, this.url);
      await writeFileAtomic(this.recordFile(record.version), `${JSON.stringify(record, null, 2)}\n`);
      await writeFileAtomic(this.liveFile, `${JSON.stringify({ version: record.version })}\n`);
      return record;
    } finally {
      await fs.rm(this.lockFile, { force: true });
    }
  }

  async live(): Promise<PublishedModel | undefined> {
    const version = await this.liveVersion();
    return version === undefined ? undefined : this.read(version);
  }

  async history(): Promise<PublishedModel[]> {
    const versions = await this.versions();
    return Promise.all(versions.map((v) => this.read(v)));
  }

  watch(listener: (model: PublishedModel) => void, options: WatchOptions = {}): () => void {
    const onError = options.onError ?? ((error: unknown) => log.error({ err: error, registry: this.url }, 'model registry watch failed'));
    let seen: number | undefined;
    let stopped = false;
    let checking: Promise<void> | undefined;
    let again = false;
    // The version live when the watch starts is not reported; only later ones.
    const started = this.liveVersion().then(
      (v) => void (seen = v ?? 0),
      (error: unknown) => {
        seen = 0;
        onError(error);
      },
    );
    const check = (): void => {
      if (stopped) return;
      if (checking) {
        again = true;
        return;
      }
      checking = (async () => {
        await started;
        do {
          again = false;
          try {
            const version = await this.liveVersion();
            if (version !== undefined && version > (seen ?? 0) && !stopped) {
              const model = await this.read(version);
              seen = version;
              if (!stopped) listener(model);
            }
          } catch (error) {
            onError(error);
          }
        } while (again && !stopped);
      })().finally(() => (checking = undefined));
    };
    const timer = setInterval(check, options.pollMs ?? 500);
    timer.unref();
    // A change notification makes the check immediate where the filesystem offers one.
    let watcher: FSWatcher | undefined;
    try {
      watcher = watchFs(this.dir, { persistent: false }, (_, file) => {
        if (file === 'LIVE') check();
      });
      watcher.on('error', () => watcher?.close());
    } catch {
      watcher = undefined; // no directory yet, or no notifications here: polling covers it
    }
    const stop = (): void => {
      stopped = true;
      clearInterval(timer);
      watcher?.close();
      options.signal?.removeEventListener('abort', stop);
    };
    if (options.signal?.aborted) stop();
    else options.signal?.addEventListener('abort', stop);
    return stop;
  }

  private recordFile(version: number): string {
    return path.join(this.versionsDir, `${String(version).padStart(6, '0')}.json`);
  }

  private async liveVersion(): Promise<number | undefined> {
    let text: string;
    try {
      text = await fs.readFile(this.liveFile, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new RegistryError(`registry ${this.url}: cannot read ${this.liveFile}`, { cause: error, retriable: true, context: { path: this.liveFile } });
    }
    let version: unknown;
    try {
      version = (JSON.parse(text) as { version?: unknown }).version;
    } catch (cause) {
      throw new RegistryError(`registry ${this.url}: ${this.liveFile} is not JSON (corrupt)`, { cause, context: { path: this.liveFile } });
    }
    if (typeof version !== 'number' || !Number.isInteger(version) || version < 1) {
      throw new RegistryError(`registry ${this.url}: ${this.liveFile} must hold {"version": <positive integer>}, got ${text.trim().slice(0, 80)}`, {
        context: { path: this.liveFile },
      });
    }
    return version;
  }

  private async read(version: number): Promise<PublishedModel> {
    const file = this.recordFile(version);
    let raw: unknown;
    try {
      raw = JSON.parse(await fs.readFile(file, 'utf8'));
    } catch (cause) {
      throw new RegistryError(`registry ${this.url}: cannot read publication ${version} (${file})`, { cause, context: { path: file } });
    }
    const parsed = PublishedModel.safeParse(raw);
    if (!parsed.success || parsed.data.version !== version) {
      const issue = parsed.error?.issues[0];
      throw new RegistryError(
        `registry ${this.url}: publication ${file} is invalid${issue ? ` at ${issue.path.join('.') || '(root)'}: ${issue.message}` : `: it says version ${parsed.data?.version}`}`,
        { context: { path: file } },
      );
    }
    return parsed.data;
  }

  private async versions(): Promise<number[]> {
    let names: string[];
    try {
      names = await fs.readdir(this.versionsDir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw new RegistryError(`registry ${this.url}: cannot list ${this.versionsDir}`, { cause: error, retriable: true });
    }
    return names
      .map((n) => VERSION_FILE.exec(n)?.[1])
      .filter((v): v is string => v !== undefined)
      .map(Number)
      .sort((a, b) => a - b);
  }

  private async lastVersion(): Promise<number> {
    return (await this.versions()).at(-1) ?? 0;
  }

  /** Takes the publish lock (exclusive create), removing one left by a crashed publisher. */
  private async lock(): Promise<void> {
    const timeout = this.options.lockTimeoutMs ?? 10_000;
    const stale = this.options.staleLockMs ?? 30_000;
    const deadline = Date.now() + timeout;
    for (;;) {
      try {
        await fs.writeFile(this.lockFile, JSON.stringify({ pid: process.pid, host: hostname(), at: new Date().toISOString() }), { flag: 'wx' });
        return;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
          throw new RegistryError(`registry ${this.url}: cannot create ${this.lockFile}`, { cause: error, context: { path: this.lockFile } });
        }
      }
      const age = await fs.stat(this.lockFile).then(
        (s) => Date.now() - s.mtimeMs,
        () => 0,
      );
      if (age > stale) {
        log.warn({ lock: this.lockFile, ageMs: Math.round(age) }, 'removing a stale publish lock (a publisher crashed?)');
        await fs.rm(this.lockFile, { force: true });
        continue;
      }
      if (Date.now() > deadline) {
        throw new RegistryError(`registry ${this.url}: another publication holds ${this.lockFile} for more than ${timeout} ms`, {
          retriable: true,
          context: { path: this.lockFile },
        });
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}
