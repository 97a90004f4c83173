import path from 'node:path';
import type { HierarchicalNSW } from 'hnswlib-node';
import { ArtifactError, ValidationError } from '../../errors';
import { writeDurably } from '../../infra/artifacts';
import type { Matrix } from '../../infra/matrix';
import { encodeNpy } from '../../infra/npy';
import type { AnnHits, AnnIndex, AnnSaveOptions, AnnSearchOptions } from './annIndex';
import { HnswSettings } from './config';
import { hnswlib } from './hnswlib';
import { RowsIndex } from './rowsIndex';
import { openIndexDir, saveIndexDir, type AnnManifest } from './manifest';
import { RESCORE_MARGIN, VectorRows, checkDims, denseIds, excludedPresent, queryRow } from './rows';
import { TopK, dot64 } from './topk';

/**
 * Approximate search with an HNSW graph (hnswlib-node, space `ip`), labels = item ids. The native
 * build is the AVX2 one where this CPU can run it (./hnswlib.ts).
 *
 * hnswlib reports `1 - inner product` in float32; the graph is asked for a few more neighbours
 * than needed ({@link RESCORE_MARGIN}; free while `ef` exceeds them, as hnswlib collects `ef`
 * candidates anyway), which are rescored with the shared `dot64` from the vectors kept in JS and
 * cut to `k` in the shared order (score descending, id ascending). So a hit's score is the number
 * the exact index gives for that item, and equal scores at the k-th place resolve by id as there.
 * A caller that scores the hits itself (the ranker) asks for the graph's own `k` (`rescore:
 * false`): no margin, no rescoring.
 *
 * Exclusions: with few excluded ids present (at most {@link FILTER_FROM_EXCLUDED}) the graph is
 * asked for `k + excluded` neighbours and the excluded ones dropped (cheapest when the list is
 * short); with more, hnswlib's filter callback skips them inside the search (one JS call per
 * candidate, but the candidate list does not grow with the exclusions). Should the graph still
 * return fewer than `min(k, size - excluded)` hits (a part of the graph it cannot reach), the query
 * falls back to scoring every item, so a search never returns fewer hits than exact search would.
 */

/** Above this many excluded ids present in the index, exclusions go through hnswlib's filter callback. */
export const FILTER_FROM_EXCLUDED = 48;

/**
 * Longest stretch of inserting before the build yields to the event loop, in ms: a server that
 * builds a new version's index while it answers (a hot swap) stalls its requests at most this long.
 */
const BUILD_SLICE_MS = 4;

export class HnswIndex extends RowsIndex implements AnnIndex {
  readonly kind = 'hnsw' as const;
  private currentEf: number;
  private queryScratch = new Float64Array(0);

  private constructor(
    rows: VectorRows,
    private graph: HierarchicalNSW,
    /** The settings the graph was built with; `ef` is the search default ({@link setDefaultEf}). */
    private settingsNow: HnswSettings,
  ) {
    super(rows);
    this.currentEf = settingsNow.ef;
    graph.setEf(settingsNow.ef);
  }

  get settings(): HnswSettings {
    return this.settingsNow;
  }

  /** Changes the search default `ef` (the graph is the same; a loaded index takes the serving config's). */
  setDefaultEf(ef: number): void {
    this.settingsNow = parseSettings({ ...this.settingsNow, ef });
  }

  /**
   * Builds the graph over `vectors` `[N, D]` (row r is item r + 1), inserting in row order with
   * the seeded level generator, so the same input builds the same graph. Yields to the event loop
   * every {@link BUILD_SLICE_MS} ms.
   */
  static async build(vectors: Matrix, settings: Partial<HnswSettings> = {}): Promise<HnswIndex> {
    const s = parseSettings(settings);
    const rows = new VectorRows(checkDims(vectors, 'HnswIndex.build'), vectors.rows);
    const ids = rows.checkNew(denseIds(vectors.rows), vectors, 'HnswIndex.build');
    const graph = new (hnswlib().addon.HierarchicalNSW)('ip', vectors.cols);
    graph.initIndex({ maxElements: Math.max(1, vectors.rows), m: s.m, efConstruction: s.efConstruction, randomSeed: s.seed });
    rows.append(ids, vectors.data); // a copy first: the caller's matrix may change while the build yields
    const dims = vectors.cols;
    let sliceStart = performance.now();
    for (let i = 0; i < ids.length; i++) {
      graph.addPoint(Array.from(rows.storage.subarray(i * dims, (i + 1) * dims)), ids[i] as number);
      if ((i & 7) === 7 && performance.now() - sliceStart >= BUILD_SLICE_MS && i + 1 < ids.length) {
        await new Promise((resolve) => setImmediate(resolve));
        sliceStart = performance.now();
      }
    }
    return new HnswIndex(rows, graph, s);
  }

  /** Reopens an index saved by {@link save}; a missing, truncated, corrupt or other-kind directory is an ArtifactError. */
  static async load(dir: string): Promise<HnswIndex> {
    const opened = await openIndexDir(dir);
    const { manifest } = opened;
    if (manifest.kind !== 'hnsw') {
      throw new ArtifactError(`${opened.dir} holds a ${manifest.kind} index, expected hnsw`, { context: { path: opened.dir } });
    }
    const graph = new (hnswlib().addon.HierarchicalNSW)('ip', manifest.dims);
    const file = opened.path('hnsw.bin');
    try {
      await graph.readIndex(file);
    } catch (cause) {
      throw new ArtifactError(`ANN index ${opened.dir}: hnswlib cannot read hnsw.bin`, { cause, context: { path: file } });
    }
    const count = graph.getCurrentCount();
    if (count !== manifest.count || graph.getNumDimensions() !== manifest.dims) {
      throw new ArtifactError(
        `ANN index ${opened.dir}: hnsw.bin holds ${count} points of ${graph.getNumDimensions()} dims, the manifest says ${manifest.count} of ${manifest.dims}`,
        { context: { path: file } },
      );
    }
    const labels = graph.getIdsList();
    if (labels.some((id) => !opened.rows.has(id))) {
      throw new ArtifactError(`ANN index ${opened.dir}: hnsw.bin holds ids that ids.npy does not`, { context: { path: file } });
    }
    return new HnswIndex(opened.rows, graph, manifest.hnsw);
  }

  search(queries: Matrix | Float32Array, k: number, options?: AnnSearchOptions): AnnHits[] {
    const where = 'HnswIndex.search';
    const { data, batch, exclude } = this.checkedSearch(where, queries, k, options);
    const ef = options?.ef ?? this.settings.ef;
    const rescore = options?.rescore ?? true;
    if (ef !== this.currentEf) {
      this.graph.setEf(ef);
      this.currentEf = ef;
    }
    const { dims, size } = this;
    // The query in float64 for rescoring: one array for every search (synchronous), not one per call.
    if (this.queryScratch.length !== dims) this.queryScratch = new Float64Array(dims);
    const q = this.queryScratch;
    const out: AnnHits[] = [];
    for (let b = 0; b < batch; b++) {
      const excluded = exclude[b];
      const present = excludedPresent(this.rows, excluded);
      const wanted = Math.min(k, size - present);
      if (wanted <= 0) {
        out.push({ ids: new Int32Array(0), scores: new Float64Array(0) });
        continue;
      }
      queryRow(data, b, dims, q);
      const point = Array.from(data.subarray(b * dims, (b + 1) * dims));
      const filtered = present > FILTER_FROM_EXCLUDED && excluded !== undefined;
      const margin = rescore ? RESCORE_MARGIN : 0;
      const found = filtered
        ? this.graph.searchKnn(point, Math.min(size - present, wanted + margin), (id) => !excluded.has(id))
        : this.graph.searchKnn(point, Math.min(size, wanted + present + margin));
      if (!rescore) {
        const hits = graphHits(found, wanted, excluded);
        out.push(hits.ids.length < wanted ? this.scoreAll(q, wanted, excluded) : hits);
        continue;
      }
      const top = new TopK(wanted);
      for (const id of found.neighbors) {
        if (excluded?.has(id)) continue;
        top.push(id, dot64(q, this.rows.storage, this.rows.row(id) as number, dims));
      }
      out.push(top.size < wanted ? this.scoreAll(q, wanted, excluded) : top.drain());
    }
    return out;
  }

  add(ids: ArrayLike<number>, vectors: Matrix): void {
    this.checkLive('HnswIndex.add');
    const checked = this.rows.checkNew(ids, vectors, 'HnswIndex.add');
    const need = this.size + checked.length;
    const capacity = this.graph.getMaxElements();
    if (need > capacity) this.graph.resizeIndex(Math.max(need, capacity * 2));
    insert(this.graph, checked, vectors.data, this.dims);
    this.rows.append(checked, vectors.data);
  }

  async save(dir: string, options: AnnSaveOptions = {}): Promise<AnnManifest> {
    this.checkLive('HnswIndex.save');
    const { m, efConstruction, ef, seed } = this.settings;
    return saveIndexDir(dir, options.createdBy ?? 'serving.ann', async (staging) => {
      // One synchronous snapshot (graph, vectors, ids, count), so an add() while the files are written cannot split them.
      const { size, dims } = this;
      this.graph.writeIndexSync(path.join(staging, 'hnsw.bin'));
      const vectors = this.rows.vectors.slice();
      const ids = this.rows.ids.slice();
      await writeDurably(path.join(staging, 'vectors.npy'), encodeNpy(vectors, [size, dims]));
      await writeDurably(path.join(staging, 'ids.npy'), encodeNpy(ids, [size]));
      return { draft: { kind: 'hnsw', dims, count: size, hnsw: { m, efConstruction, ef, seed } }, names: ['vectors.npy', 'ids.npy', 'hnsw.bin'] };
    });
  }

  dispose(): void {
    // hnswlib frees the graph when the object is collected; dropping the reference is all there is.
    this.disposed = true;
    this.graph = undefined as unknown as HierarchicalNSW;
  }

  /** Exact fallback for a query the graph could not fill: every row scored. */
  private scoreAll(q: Float64Array, wanted: number, excluded: ReadonlySet<number> | undefined): AnnHits {
    const top = new TopK(wanted);
    const ids = this.rows.ids;
    for (let r = 0; r < this.size; r++) {
      const id = ids[r] as number;
      const s = dot64(q, this.rows.storage, r, this.dims);
      if (!top.accepts(s, id) || excluded?.has(id)) continue;
      top.push(id, s);
    }
    return top.drain();
  }

}

function parseSettings(settings: Partial<HnswSettings>): HnswSettings {
  const parsed = HnswSettings.safeParse(settings);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  throw new ValidationError(`HnswIndex.build: settings.${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'invalid'}`);
}

/** The first `wanted` of the graph's hits (best first) that are not excluded, scored `1 - distance` (float32 inner products). */
function graphHits(found: { readonly neighbors: number[]; readonly distances: number[] }, wanted: number, excluded: ReadonlySet<number> | undefined): AnnHits {
  const ids = new Int32Array(wanted);
  const scores = new Float64Array(wanted);
  let n = 0;
  for (let j = 0; j < found.neighbors.length && n < wanted; j++) {
    const id = found.neighbors[j] as number;
    if (excluded?.has(id)) continue;
    ids[n] = id;
    scores[n] = 1 - (found.distances[j] as number);
    n++;
  }
  return { ids: ids.subarray(0, n), scores: scores.subarray(0, n) };
}

/** Inserts `ids` `[n]` with their rows `vectors` `[n, dims]` (plain arrays: hnswlib takes nothing else). */
function insert(graph: HierarchicalNSW, ids: Int32Array, vectors: Float32Array, dims: number): void {
  for (let i = 0; i < ids.length; i++) graph.addPoint(Array.from(vectors.subarray(i * dims, (i + 1) * dims)), ids[i] as number);
}
