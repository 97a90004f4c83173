import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { ArtifactError, StreamrecError } from '../../errors';
import { fsyncDir, sha256, sha256InSlices, writeDurably } from '../../infra/artifacts';
import { decodeNpy, type NpyArray } from '../../infra/npy';
import { STREAMREC_VERSION } from '../../version';
import { VectorRows } from './rows';

/**
 * The on-disk form of an {@link AnnIndex}: a directory with `vectors.npy` `[count, dims]` float32,
 * `ids.npy` `[count]` int32 (row order), `hnsw.bin` for HNSW (hnswlib's own format), and
 * `manifest.json` ({@link AnnManifest}), written last. Loading checks the manifest schema and every
 * file's size and sha256 before anything is parsed, so a truncated, corrupt or swapped file is an
 * ArtifactError, never a crash in native code.
 */

export const ANN_MANIFEST = 'manifest.json';
export const ANN_FORMAT = 'streamrec.ann-index';

const AnnFile = z
  .strictObject({
    name: z.string().regex(/^[A-Za-z0-9._-]+$/, 'a plain file name inside the index directory').describe('File name.'),
    bytes: z.number().int().nonnegative().describe('Exact size; another size means truncation.'),
    sha256: z.string().regex(/^[0-9a-f]{64}$/, 'a lowercase hex sha256').describe('Content hash, checked on load.'),
  })
  .describe('One data file of the index.');

/** HNSW graph settings as built (M, efConstruction, seed) and the search default (ef). */
export const HnswManifestSettings = z
  .strictObject({
    m: z.number().int().min(2).describe('Links per node (M).'),
    efConstruction: z.number().int().min(1).describe('Candidate list size while building.'),
    ef: z.number().int().min(1).describe('Default candidate list size while searching.'),
    seed: z.number().int().nonnegative().describe('hnswlib random seed (level assignment).'),
  })
  .describe('HNSW settings.');

const common = {
  format: z.literal(ANN_FORMAT).describe('What this directory holds.'),
  formatVersion: z.literal(1).describe('Version of this layout.'),
  dims: z.number().int().min(1).describe('Vector width D.'),
  count: z.number().int().nonnegative().describe('Items indexed.'),
  files: z.array(AnnFile).min(1).describe('Data files, checked on load.'),
  createdBy: z
    .strictObject({
      job: z.string().min(1).describe('What wrote the index (job or command).'),
      streamrecVersion: z.string().min(1),
      node: z.string().min(1).describe('Node.js version.'),
    })
    .describe('What wrote the index.'),
  createdAt: z.iso.datetime().describe('When it was written (UTC).'),
};

export const AnnManifest = z
  .discriminatedUnion('kind', [
    z.strictObject({ kind: z.literal('exact'), ...common }),
    z.strictObject({ kind: z.literal('hnsw'), hnsw: HnswManifestSettings, ...common }),
  ])
  .describe('Manifest of a saved ANN index.');
export type AnnManifest = z.infer<typeof AnnManifest>;

/** What an implementation says about itself when saving (the rest of the manifest is filled in here). */
export type AnnManifestDraft =
  | { readonly kind: 'exact'; readonly dims: number; readonly count: number }
  | { readonly kind: 'hnsw'; readonly dims: number; readonly count: number; readonly hnsw: z.infer<typeof HnswManifestSettings> };

/**
 * Saves an index directory: `writeFiles` writes the data files into a fresh staging directory
 * beside `dir` and returns their names with what the index says about itself (taken in the same
 * synchronous snapshot as the data, so an item added meanwhile cannot split them); the files are
 * fsynced and hashed, the manifest is written last, and the staging directory replaces `dir`
 * (which must be absent, empty, or a saved index).
 */
export async function saveIndexDir(
  dir: string,
  createdBy: string,
  writeFiles: (staging: string) => Promise<{ draft: AnnManifestDraft; names: string[] }>,
): Promise<AnnManifest> {
  const target = path.resolve(dir);
  await fs.mkdir(path.dirname(target), { recursive: true });
  await checkReplaceable(target);
  const staging = `${target}.staging-${randomBytes(6).toString('hex')}`;
  await fs.mkdir(staging);
  try {
    const { draft, names } = await writeFiles(staging);
    const files = [];
    for (const name of names) {
      const file = path.join(staging, name);
      const data = await fs.readFile(file);
      await fsyncFile(file);
      files.push({ name, bytes: data.length, sha256: sha256(data) });
    }
    const manifest = AnnManifest.parse({
      ...draft,
      format: ANN_FORMAT,
      formatVersion: 1,
      files,
      createdBy: { job: createdBy, streamrecVersion: STREAMREC_VERSION, node: process.version },
      createdAt: new Date().toISOString(),
    });
    await writeDurably(path.join(staging, ANN_MANIFEST), JSON.stringify(manifest, null, 2));
    const old = `${target}.old-${randomBytes(6).toString('hex')}`;
    const hadOld = await exists(target);
    if (hadOld) await fs.rename(target, old);
    await fs.rename(staging, target);
    if (hadOld) await fs.rm(old, { recursive: true, force: true });
    await fsyncDir(path.dirname(target));
    return manifest;
  } catch (cause) {
    await fs.rm(staging, { recursive: true, force: true });
    if (cause instanceof StreamrecError) throw cause;
    throw new ArtifactError(`cannot save the ANN index to ${target}`, { cause, context: { path: target } });
  }
}

/** A saved index whose manifest and files have been checked. */
export interface OpenedIndexDir {
  readonly dir: string;
  readonly manifest: AnnManifest;
  /** The rows (vectors and ids), checked against the manifest's count and dims. */
  readonly rows: VectorRows;
  /** Path of a data file (already verified) for readers that take a path (hnswlib). */
  path(name: string): string;
}

/** Opens a saved index: manifest schema, every listed file's size and hash, then the rows. */
export async function openIndexDir(dir: string): Promise<OpenedIndexDir> {
  const target = path.resolve(dir);
  const manifestFile = path.join(target, ANN_MANIFEST);
  let text: string;
  try {
    text = await fs.readFile(manifestFile, 'utf8');
  } catch (cause) {
    throw new ArtifactError(`no ANN index at ${target} (cannot read ${ANN_MANIFEST})`, { cause, context: { path: manifestFile } });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (cause) {
    throw new ArtifactError(`ANN index manifest ${manifestFile} is not valid JSON (truncated or corrupt)`, { cause, context: { path: manifestFile } });
  }
  const parsed = AnnManifest.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ArtifactError(`ANN index manifest ${manifestFile} is invalid at ${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'unknown'}`, {
      context: { path: manifestFile },
    });
  }
  const manifest = parsed.data;
  const buffers = new Map<string, Buffer>();
  for (const entry of manifest.files) {
    const file = path.join(target, entry.name);
    let data: Buffer;
    try {
      data = await fs.readFile(file);
    } catch (cause) {
      throw new ArtifactError(`ANN index ${target}: cannot read ${entry.name}`, { cause, context: { path: file } });
    }
    if (data.length !== entry.bytes) {
      throw new ArtifactError(`ANN index ${target}: ${entry.name} has ${data.length} bytes, the manifest says ${entry.bytes} (truncated or replaced)`, {
        context: { path: file },
      });
    }
    if ((await sha256InSlices(data)) !== entry.sha256) {
      throw new ArtifactError(`ANN index ${target}: ${entry.name} does not match its sha256 in the manifest (corrupt or replaced)`, { context: { path: file } });
    }
    buffers.set(entry.name, data);
  }
  const need = (name: string): Buffer => {
    const data = buffers.get(name);
    if (!data) {
      throw new ArtifactError(`ANN index ${target}: the manifest lists no ${name} (lists: ${manifest.files.map((f) => f.name).join(', ')})`, {
        context: { path: manifestFile },
      });
    }
    return data;
  };
  // The vectors are read in place from the file's buffer (read for this alone) and become the
  // rows' storage: no 100 MB copies while a server that loads a new version answers requests.
  const vectors = expectNpy(decodeNpy(need('vectors.npy'), path.join(target, 'vectors.npy'), { copy: false }), 'float32', [manifest.count, manifest.dims], target);
  const ids = expectNpy(decodeNpy(need('ids.npy'), path.join(target, 'ids.npy')), 'int32', [manifest.count], target);
  const rows = new VectorRows(manifest.dims);
  try {
    const checked = await rows.checkNewInSlices(ids.data as Int32Array, { data: vectors.data as Float32Array, rows: manifest.count, cols: manifest.dims }, 'ANN index');
    rows.adopt(checked, vectors.data as Float32Array);
  } catch (cause) {
    throw new ArtifactError(`ANN index ${target}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause, context: { path: target } });
  }
  return {
    dir: target,
    manifest,
    rows,
    path: (name) => {
      need(name);
      return path.join(target, name);
    },
  };
}

function expectNpy(array: NpyArray, dtype: NpyArray['dtype'], shape: number[], dir: string): NpyArray {
  if (array.dtype !== dtype || array.shape.length !== shape.length || array.shape.some((s, i) => s !== shape[i])) {
    throw new ArtifactError(
      `ANN index ${dir}: expected a ${dtype} array [${shape.join(', ')}] as the manifest says, found ${array.dtype} [${array.shape.join(', ')}]`,
      { context: { path: dir } },
    );
  }
  return array;
}

async function checkReplaceable(target: string): Promise<void> {
  let entries: string[];
  try {
    entries = await fs.readdir(target);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new ArtifactError(`cannot save the ANN index to ${target}: it exists and is not a readable directory`, { cause: error, context: { path: target } });
  }
  if (entries.length > 0 && !entries.includes(ANN_MANIFEST)) {
    throw new ArtifactError(`cannot save the ANN index to ${target}: the directory holds other files (${entries.slice(0, 5).join(', ')}) and no index manifest`, {
      context: { path: target },
    });
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await fs.access(file);
    return true;
  } catch {
    return false;
  }
}

async function fsyncFile(file: string): Promise<void> {
  const handle = await fs.open(file, 'r+');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
