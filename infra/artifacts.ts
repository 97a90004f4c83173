import { createHash, randomBytes, type Hash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { ArtifactError } from '../errors';
import {
  ArtifactManifest,
  type ArtifactFile,
  type ArtifactInput,
  type ArtifactKind,
} from '../schemas/artifacts';
import { STREAMREC_VERSION } from '../version';
import { decodeNpy, dtypeOf, encodeNpy, type NpyArray, type NpyData } from './npy';
import { inSlices } from './slices';

/**
 * A directory of artifacts: `<root>/<kind>/<id>/{manifest.json, data files}` plus
 * `<root>/<kind>/LATEST` naming the newest id. Writes are atomic (staged in `<root>/.staging`,
 * fsynced, renamed into place), so a crash never leaves a half-written artifact that looks valid;
 * reads check the manifest schema, every file's size and sha256.
 */

export interface ArtifactFileDraft {
  readonly name: string;
  readonly data: Buffer;
  readonly dtype?: ArtifactFile['dtype'];
  readonly shape?: number[];
  readonly description?: string;
}

export interface ArtifactDraft {
  readonly kind: ArtifactKind;
  readonly job: string;
  readonly settings: Record<string, unknown>;
  readonly inputs: ArtifactInput[];
  readonly files: ArtifactFileDraft[];
  readonly metrics?: Record<string, unknown>;
}

export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * {@link sha256} of a large buffer in slices of `sliceBytes`, yielding to the event loop between
 * them: a server verifying a 100 MB file while it answers stalls its requests one slice at a time
 * (~10 ms), not ~200 ms at once.
 */
export async function sha256InSlices(data: Uint8Array, sliceBytes = 4 << 20): Promise<string> {
  const hash = createHash('sha256');
  await updateInSlices(hash, data, sliceBytes);
  return hash.digest('hex');
}

/** Feeds `data` to `hash` in slices of `sliceBytes`, yielding to the event loop between them (see {@link sha256InSlices}). */
export async function updateInSlices(hash: Hash, data: Uint8Array, sliceBytes = 4 << 20): Promise<void> {
  await inSlices(data.length, sliceBytes, (from, to) => hash.update(data.subarray(from, to)));
}

/** Stable JSON (sorted keys) so that equal settings hash equally. */
export function stableStringify(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(stableStringify).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableStringify(v)}`).join(',')}}`;
}

/** A float32/int32/uint8 matrix as an artifact file in .npy format. */
export function npyFile(name: string, data: NpyData, shape: number[], description?: string): ArtifactFileDraft {
  return { name, data: encodeNpy(data, shape), dtype: dtypeOf(data), shape, ...(description ? { description } : {}) };
}

export function jsonFile(name: string, value: unknown, description?: string): ArtifactFileDraft {
  return { name, data: Buffer.from(JSON.stringify(value)), dtype: 'json', ...(description ? { description } : {}) };
}

export class LoadedArtifact {
  constructor(
    readonly manifest: ArtifactManifest,
    readonly dir: string,
  ) {}

  get id(): string {
    return this.manifest.id;
  }

  fileEntry(name: string): ArtifactFile {
    const entry = this.manifest.files.find((f) => f.name === name);
    if (!entry) {
      throw new ArtifactError(
        `artifact ${this.manifest.id} has no file ${JSON.stringify(name)} (has: ${this.manifest.files.map((f) => f.name).join(', ')})`,
        { context: { path: this.dir } },
      );
    }
    return entry;
  }

  /** Reads one file and checks its size and hash against the manifest. */
  async readFile(name: string): Promise<Buffer> {
    const entry = this.fileEntry(name);
    const file = path.join(this.dir, name);
    let data: Buffer;
    try {
      data = await fs.readFile(file);
    } catch (cause) {
      throw new ArtifactError(`artifact ${this.manifest.id}: cannot read ${name}`, { cause, context: { path: file } });
    }
    if (data.length !== entry.bytes) {
      throw new ArtifactError(
        `artifact ${this.manifest.id}: ${name} has ${data.length} bytes, manifest says ${entry.bytes} (truncated or replaced)`,
        { context: { path: file } },
      );
    }
    // Hashed in slices: a server reading a new version's 100 MB tables keeps answering meanwhile.
    if ((await sha256InSlices(data)) !== entry.sha256) {
      throw new ArtifactError(`artifact ${this.manifest.id}: ${name} does not match its sha256 (corrupt)`, {
        context: { path: file },
      });
    }
    return data;
  }

  async readNpy(name: string): Promise<NpyArray> {
    // The file's buffer was read for this array alone: its body is read in place where it is
    // aligned (a 100,000-item table is not copied again while a server loads beside traffic).
    return decodeNpy(await this.readFile(name), path.join(this.dir, name), { copy: false });
  }

  async readJson<T = unknown>(name: string): Promise<T> {
    const data = await this.readFile(name);
    try {
      return JSON.parse(data.toString('utf8')) as T;
    } catch (cause) {
      throw new ArtifactError(`artifact ${this.manifest.id}: ${name} is not valid JSON`, { cause, context: { path: this.dir } });
    }
  }

  /** Checks every file (size and hash). */
  async verify(): Promise<void> {
    for (const f of this.manifest.files) await this.readFile(f.name);
  }
}

export class ArtifactStore {
  constructor(readonly root: string) {}

  private kindDir(kind: ArtifactKind): string {
    return path.join(this.root, kind);
  }

  /**
   * Writes an artifact atomically and marks it the latest of its kind. The id is derived from
   * kind, settings, inputs and file contents, so writing the same thing twice returns the
   * existing artifact.
   */
  async write(draft: ArtifactDraft): Promise<LoadedArtifact> {
    const files: ArtifactFile[] = draft.files.map((f) => ({
      name: f.name,
      bytes: f.data.length,
      sha256: sha256(f.data),
      ...(f.dtype ? { dtype: f.dtype } : {}),
      ...(f.shape ? { shape: f.shape } : {}),
      ...(f.description ? { description: f.description } : {}),
    }));
    const names = new Set(files.map((f) => f.name));
    if (names.has('manifest.json') || names.size !== files.length) {
      throw new ArtifactError(`artifact files must have unique names other than manifest.json, got ${files.map((f) => f.name).join(', ')}`);
    }
    const id = `${draft.kind}-${sha256(
      stableStringify({ kind: draft.kind, settings: draft.settings, inputs: draft.inputs, files: files.map((f) => [f.name, f.sha256]) }),
    ).slice(0, 16)}`;
    const finalDir = path.join(this.kindDir(draft.kind), id);
    const existing = await this.tryOpen(finalDir);
    if (existing) {
      await this.setLatest(draft.kind, id);
      return existing;
    }

    const manifest = ArtifactManifest.parse({
      manifestVersion: 1,
      id,
      kind: draft.kind,
      version: (await this.maxVersion(draft.kind)) + 1,
      producer: { job: draft.job, streamrecVersion: STREAMREC_VERSION, node: process.version },
      settings: JSON.parse(JSON.stringify(draft.settings)) as Record<string, unknown>,
      inputs: draft.inputs,
      files,
      ...(draft.metrics ? { metrics: JSON.parse(JSON.stringify(draft.metrics)) as Record<string, unknown> } : {}),
      createdAt: new Date().toISOString(),
    });

    const staging = path.join(this.root, '.staging', `${id}.${randomBytes(6).toString('hex')}`);
    await fs.mkdir(staging, { recursive: true });
    try {
      for (const f of draft.files) await writeDurably(path.join(staging, f.name), f.data);
      // The manifest goes last: a directory without one is never taken for an artifact.
      await writeDurably(path.join(staging, 'manifest.json'), Buffer.from(JSON.stringify(manifest, null, 2)));
      await fs.mkdir(this.kindDir(draft.kind), { recursive: true });
      await fs.rename(staging, finalDir);
      await fsyncDir(this.kindDir(draft.kind));
    } catch (cause) {
      await fs.rm(staging, { recursive: true, force: true });
      if ((await this.tryOpen(finalDir)) === undefined) {
        throw new ArtifactError(`cannot write artifact ${id} under ${this.root}`, { cause, context: { path: finalDir } });
      }
    }
    await this.setLatest(draft.kind, id);
    return new LoadedArtifact(manifest, finalDir);
  }

  /** Opens an artifact by id and checks its manifest (files are checked when read). */
  async open(id: string): Promise<LoadedArtifact> {
    const kind = id.slice(0, id.lastIndexOf('-')) as ArtifactKind;
    const dir = path.join(this.root, kind, id);
    return this.openDir(dir);
  }

  /** Opens an artifact directory (any location) and checks its manifest. */
  async openDir(dir: string): Promise<LoadedArtifact> {
    const file = path.join(dir, 'manifest.json');
    let text: string;
    try {
      text = await fs.readFile(file, 'utf8');
    } catch (cause) {
      throw new ArtifactError(`no artifact at ${dir} (cannot read manifest.json)`, { cause, context: { path: file } });
    }
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (cause) {
      throw new ArtifactError(`artifact manifest ${file} is not valid JSON (truncated or corrupt)`, { cause, context: { path: file } });
    }
    const parsed = ArtifactManifest.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new ArtifactError(
        `artifact manifest ${file} is invalid at ${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'unknown'}`,
        { context: { path: file } },
      );
    }
    return new LoadedArtifact(parsed.data, dir);
  }

  /** The newest artifact of a kind, or undefined when there is none. */
  async latest(kind: ArtifactKind): Promise<LoadedArtifact | undefined> {
    let id: string;
    try {
      id = (await fs.readFile(path.join(this.kindDir(kind), 'LATEST'), 'utf8')).trim();
    } catch {
      return undefined;
    }
    return this.open(id);
  }

  async list(kind: ArtifactKind): Promise<ArtifactManifest[]> {
    let names: string[];
    try {
      names = await fs.readdir(this.kindDir(kind));
    } catch {
      return [];
    }
    const out: ArtifactManifest[] = [];
    for (const name of names) {
      if (!name.startsWith(`${kind}-`)) continue;
      const loaded = await this.tryOpen(path.join(this.kindDir(kind), name));
      if (loaded) out.push(loaded.manifest);
    }
    return out.sort((a, b) => a.version - b.version);
  }

  private async maxVersion(kind: ArtifactKind): Promise<number> {
    return (await this.list(kind)).reduce((m, a) => Math.max(m, a.version), 0);
  }

  private async tryOpen(dir: string): Promise<LoadedArtifact | undefined> {
    try {
      return await this.openDir(dir);
    } catch {
      return undefined;
    }
  }

  private async setLatest(kind: ArtifactKind, id: string): Promise<void> {
    await fs.mkdir(this.kindDir(kind), { recursive: true });
    const target = path.join(this.kindDir(kind), 'LATEST');
    const tmp = `${target}.${randomBytes(6).toString('hex')}.tmp`;
    await writeDurably(tmp, Buffer.from(`${id}\n`));
    await fs.rename(tmp, target);
  }
}

/** Writes a file and fsyncs it. */
export async function writeDurably(file: string, data: Buffer | string): Promise<void> {
  const handle = await fs.open(file, 'w');
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Writes `file` atomically: a temp file beside it, fsync, rename. */
export async function writeFileAtomic(file: string, data: Buffer | string): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await writeDurably(tmp, data);
    await fs.rename(tmp, file);
  } catch (cause) {
    await fs.rm(tmp, { force: true });
    throw new ArtifactError(`cannot write ${file}`, { cause, context: { path: file } });
  }
  await fsyncDir(path.dirname(file));
}

/** Fsyncs a directory (after a rename into it), where the filesystem allows it. */
export async function fsyncDir(dir: string): Promise<void> {
  try {
    const handle = await fs.open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // Some filesystems do not allow fsync on directories; the rename is still atomic.
  }
}
