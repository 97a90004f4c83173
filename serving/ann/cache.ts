import { createHash, randomBytes } from 'node:crypto';
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { updateInSlices } from '../../infra/artifacts';
import type { Matrix } from '../../infra/matrix';
import { ValidationError } from '../../errors';
import { createLogger } from '../../logging';
import type { AnnHits, AnnIndex, AnnSaveOptions, AnnSearchOptions } from './annIndex';
import { parseAnnConfig, type AnnConfig, type AnnConfigInput } from './config';
import { chooseKind, createAnnIndex, loadAnnIndex } from './create';
import { HnswIndex } from './hnsw';
import { ANN_MANIFEST, type AnnManifest } from './manifest';

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
 *
 * Indexes in use are shared, too: while an index the cache gave out is held (not disposed), a
 * request for the same vectors and settings gets the same index, with no disk read nor graph
 * load (a server swapping to a version of the same rebuild keeps the text index it has: ~0.7 s
 * of loading at 100,000 items, 2-3 s beside traffic, and a second copy in memory). What the cache
 * gives out are handles ({@link SharedAnnIndex}): the index is disposed when its last handle is;
 * they take no new items (`add` throws), as other holders would see them.
 */
export class AnnIndexCache {
  hits = 0;
  misses = 0;
  /** Requests answered with an index already in use. */
  shared = 0;
  /** Indexes given out and not yet disposed by every holder, by key and search `ef`. */
  private readonly inUse = new Map<string, { readonly index: Promise<AnnIndex>; holders: number }>();

  constructor(
    readonly dir: string,
    private readonly keep = 8,
  ) {}

  /** The index {@link createAnnIndex} builds for `vectors` and `config`: one in use for the same vectors and settings, else from the cache's directory when it holds it, else built. */
  async getOrBuild(vectors: Matrix, config: AnnConfigInput | AnnConfig = {}): Promise<AnnIndex> {
    const settings = parseAnnConfig(config);
    if (chooseKind(vectors.rows, settings) === 'exact') return createAnnIndex(vectors, settings);
    const key = await cacheKey(vectors, settings);
    const liveKey = `${key}/${settings.hnsw.ef}`;
    let use = this.inUse.get(liveKey);
    if (use) this.shared++;
    else {
      use = { index: this.loadOrBuild(vectors, settings, key), holders: 0 };
      this.inUse.set(liveKey, use);
    }
    use.holders++;
    const held = use;
    let index: AnnIndex;
    try {
      index = await held.index;
    } catch (error) {
      if (--held.holders === 0 && this.inUse.get(liveKey) === held) this.inUse.delete(liveKey);
      throw error;
    }
    return new SharedAnnIndex(index, () => {
      if (--held.holders > 0) return;
      if (this.inUse.get(liveKey) === held) this.inUse.delete(liveKey);
      index.dispose();
    });
  }

  /** The index for `key` from the directory, or built and stored there. */
  private async loadOrBuild(vectors: Matrix, settings: AnnConfig, key: string): Promise<AnnIndex> {
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
 * A holder's handle on an index the cache shares: searches go to the index; `dispose` lets go of
 * it (the index itself is disposed with its last handle); `add` is refused, as every holder would
 * see the new items.
 */
export class SharedAnnIndex implements AnnIndex {
  private released = false;

  constructor(
    /** The index shared by every holder. */
    readonly index: AnnIndex,
    private readonly release: () => void,
  ) {}

  get kind(): AnnIndex['kind'] {
    return this.index.kind;
  }
  get dims(): number {
    return this.index.dims;
  }
  get size(): number {
    return this.index.size;
  }
  /** The shared index itself: every handle on it has the same identity. */
  get identity(): object {
    return this.index;
  }

  search(queries: Matrix | Float32Array, k: number, options?: AnnSearchOptions): AnnHits[] {
    this.check('search');
    return this.index.search(queries, k, options);
  }

  add(ids: ArrayLike<number>, vectors: Matrix): void {
    throw new ValidationError(
      `AnnIndexCache: an index from the cache is shared by its holders and takes no new items (${ids.length} ids, ${vectors.rows} rows given); build one of its own (createAnnIndex) to add to it`,
    );
  }

  has(id: number): boolean {
    this.check('has');
    return this.index.has(id);
  }

  save(dir: string, options?: AnnSaveOptions): Promise<AnnManifest> {
    this.check('save');
    return this.index.save(dir, options);
  }

  dispose(): void {
    if (this.released) return;
    this.released = true;
    this.release();
  }

  private check(what: string): void {
    if (this.released) throw new Error(`AnnIndexCache: ${what} on an index handle after its dispose`);
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
