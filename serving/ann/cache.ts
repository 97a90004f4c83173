import { createHash, randomBytes } from 'node:crypto';
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { updateInSlices } from '../../infra/artifacts';
import type { Matrix } from '../../infra/matrix';
import { createLogger } from '../../logging';
import type { AnnIndex } from './annIndex';
import { parseAnnConfig, type AnnConfig, type AnnConfigInput } from './config';
import { chooseKind, createAnnIndex, loadAnnIndex } from './create';
import { HnswIndex } from './hnsw';
import { ANN_MANIFEST } from './manifest';

const log = createLogger('serving.ann.cache');

/**
 * Built HNSW indexes kept on disk under `dir`, by content: an entry's key is the sha256 of the
 * vectors and of the settings the graph is built with, so a restart, a second replica or a later
 * version over the same vectors (a catalog reload, the same checkpoint published again) loads
 * the graph in seconds instead of building it (about 40 s per 100,000 items here). An entry that
 * fails to load (truncated, corrupt: the index's own checks) is removed and built again. Exact
 * indexes cost nothing to build and are not cached. At most `keep` entries stay, the least
 * recently used removed first. Writes go to a temporary directory renamed into place, so
 * replicas sharing the directory never read a partial entry.
 */
export class AnnIndexCache {
  hits = 0;
  misses = 0;

  constructor(
    readonly dir: string,
    private readonly keep = 8,
  ) {}

  /** The index {@link createAnnIndex} builds for `vectors` and `config`, from the cache when it holds it. */
  async getOrBuild(vectors: Matrix, config: AnnConfigInput | AnnConfig = {}): Promise<AnnIndex> {
    const settings = parseAnnConfig(config);
    if (chooseKind(vectors.rows, settings) === 'exact') return createAnnIndex(vectors, settings);
    const key = await cacheKey(vectors, settings);
    const entry = path.join(this.dir, key);
    if (existsSync(path.join(entry, ANN_MANIFEST))) {
      try {
        const index = await loadAnnIndex(entry);
        if (index instanceof HnswIndex) index.setDefaultEf(settings.hnsw.ef); // ef is not part of the key: searching, not building
        this.hits++;
        const now = new Date();
        await fs.utimes(entry, now, now).catch(() => undefined); // most recently used
        log.debug({ entry, items: vectors.rows }, 'ANN index loaded from the cache');
        return index;
      } catch (error) {
        log.warn({ err: error, entry }, 'a cached ANN index could not be loaded: building it again');
        await fs.rm(entry, { recursive: true, force: true });
      }
    }
    this.misses++;
    const built = await createAnnIndex(vectors, settings);
    await this.store(built, entry).catch((error: unknown) => log.warn({ err: error, entry }, 'the built ANN index could not be cached'));
    return built;
  }

  private async store(index: AnnIndex, entry: string): Promise<void> {
    await fs.mkdir(this.dir, { recursive: true });
    const staging = path.join(this.dir, `.staging-${path.basename(entry)}-${randomBytes(4).toString('hex')}`);
    try {
      await index.save(staging);
      await fs.rename(staging, entry).catch(async (error: NodeJS.ErrnoException) => {
        // Another replica cached the same entry first: theirs is as good as ours.
        if (error.code !== 'ENOTEMPTY' && error.code !== 'EEXIST') throw error;
      });
    } finally {
      await fs.rm(staging, { recursive: true, force: true });
    }
    await this.prune();
  }

  /** Removes the least recently used entries beyond `keep`. */
  private prune(): Promise<void> {
    return pruneLeastRecentlyUsed(this.dir, this.keep);
  }
}

/**
 * Removes the entries of a cache directory beyond the `keep` most recently used (by mtime, which
 * a hit refreshes); names starting with `.` (staging) and, with `suffix`, names without it are
 * left alone.
 */
export async function pruneLeastRecentlyUsed(dir: string, keep: number, suffix = ''): Promise<void> {
  const names = (await fs.readdir(dir)).filter((n) => !n.startsWith('.') && n.endsWith(suffix));
  if (names.length <= keep) return;
  const dated = await Promise.all(names.map(async (name) => ({ name, mtime: (await fs.stat(path.join(dir, name))).mtimeMs })));
  dated.sort((a, b) => b.mtime - a.mtime);
  for (const old of dated.slice(keep)) await fs.rm(path.join(dir, old.name), { recursive: true, force: true });
}

/**
 * sha256 of the vectors' shape and bytes and of the HNSW build settings (not `ef`, a search
 * setting); hashed in slices, as a server that swaps versions computes it while it answers.
 */
async function cacheKey(vectors: Matrix, settings: AnnConfig): Promise<string> {
  const hash = createHash('sha256');
  const { ef: _searchOnly, ...build } = settings.hnsw;
  hash.update(JSON.stringify({ rows: vectors.rows, cols: vectors.cols, hnsw: build }));
  const data = vectors.data.subarray(0, vectors.rows * vectors.cols);
  await updateInSlices(hash, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  return hash.digest('hex');
}
