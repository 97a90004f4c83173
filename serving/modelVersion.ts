import { ValidationError } from '../errors';
import { tf } from '../infra/tf';
import { createLogger } from '../logging';
import type { TextEncoderSpec } from '../features';
import type { ArtifactStore } from '../infra/artifacts';
import type { PublishedModel } from '../infra/registry';
import { denseHistoriesBatch, denseIdsOf, knownDenseIds, loadServableModel, type ServableModel } from '../jobs';
import { AnnConfig, DEFAULT_CANDIDATES } from '../schemas/serving';
import { hostItemTable, textPriorTableInSlices } from '../trainer';
import { chooseKind, createAnnIndex, type AnnIndex, type AnnIndexCache } from './ann';
import { CoalescingEncoder } from './coalescingEncoder';
import { OnnxItemScorer, openUserEncoder, ThreadedItemScorer, type CoalescedItemScorer, type InferenceThread, type UserEncoderChoice } from './onnx';
import { Ranker, withoutPadding } from './ranker';
import type { ItemTableCache } from './itemTableCache';
import { markPrepared } from './prepared';
import { TextSearch } from './textSearch';

/** One recommended item: its external id and the score it was ranked by. */
export interface ScoredItem {
  readonly itemId: string;
  readonly score: number;
}

/** What a response says about the model that answered. */
export interface ModelDescription {
  readonly version: number;
  readonly checkpointId: string;
  readonly modelType: string;
  readonly semanticIds: string | null;
  readonly embeddings: string | null;
  readonly items: number;
  /** What computes user vectors: onnx or tfjs. */
  readonly engine: string;
}

export interface ModelVersionOptions {
  /** The rebuild's text encoder: with it, the version can search by free text. */
  readonly textSpec?: TextEncoderSpec;
  /** What computes user vectors (default auto: ONNX, else TF.js). */
  readonly engine?: UserEncoderChoice;
  readonly onnxThreads?: number;
  /** The candidate index (default: exact below 20,000 items, HNSW above). */
  readonly ann?: AnnConfig;
  /** With an HNSW index, candidates from each index before exact rescoring. */
  readonly candidates?: number;
  /** Where built HNSW indexes are kept and looked up (none: every load builds). */
  readonly annCache?: AnnIndexCache;
  /** Where host item tables are kept by checkpoint and catalog (a prepared publication's is read, not computed). */
  readonly tableCache?: ItemTableCache;
  /**
   * With an exact index, what computes every item's cosine per request: `onnx` (default) in native
   * float32 (serving/onnx/itemScorer.ts; the ranker scores the items that could enter the top k
   * exactly, so answers do not change), falling back to `js` when ONNX Runtime cannot run it.
   */
  readonly itemScorer?: 'onnx' | 'js';
  /** Where the ONNX sessions run: on this thread (default), or on an inference thread of their own (serving.inferenceThread). */
  readonly inferenceThread?: InferenceThread;
  /**
   * Build the text index that free-text search uses at HNSW size even without `textSpec` (what
   * {@link ModelVersion.prepare} does, so that servers with an encoder find it in `annCache`
   * instead of building it while they load a model without a text prior).
   */
  readonly buildSearchIndex?: boolean;
}

/** What the ranker's native cosines come from: an ONNX item scorer, on this thread or an inference thread. */
type ItemScorer = CoalescedItemScorer;

const log = createLogger('serving.model');

/** Native cosines for the exact ranker (serving/onnx/itemScorer.ts). */
interface NativeScorers {
  /** Every item's model cosine to a user vector. */
  readonly model: ItemScorer;
  /** Every item's text cosine to a query item (max-pooled prior), with the text table `[N + 1, D]` the query rows come from. */
  readonly text?: ItemScorer;
  readonly textTable?: Float32Array;
}

/**
 * A published model made ready to answer: the servable model (the trained model, its tuned text
 * prior, the catalog it scores, grown catalogs included), the engine that computes user vectors
 * (ONNX or TF.js), the item vectors and their index, and the ranker that scores as the offline
 * evaluation does (model cosine + tuned prior). Held for the version's whole life.
 *
 * Versions are shared by the requests in flight: {@link acquire} before use and release after;
 * a retired version is disposed when its last request releases it.
 */
export class ModelVersion {
  private leases = 0;
  private retired = false;
  private disposed = false;

  private constructor(
    /** The publication it serves (version 0 while it is only being prepared: {@link prepare}). */
    readonly published: Pick<PublishedModel, 'version' | 'checkpointId'>,
    readonly servable: ServableModel,
    /** What computes user vectors (the engine behind a {@link CoalescingEncoder}). */
    readonly encoder: CoalescingEncoder,
    /** `[N + 1, H]` item vectors, L2-normalised (host copy of the model's item table). */
    private readonly items: Float32Array,
    private readonly indexes: readonly AnnIndex[],
    readonly ranker: Ranker,
    /**
     * Native cosines for the exact ranker, or none (the ranker computes them): every item's model
     * cosine to the user vector, and every item's text cosine to a query item whose text-neighbour
     * list is not cached yet.
     */
    private readonly scorers: NativeScorers | undefined,
    /** Free-text search over the catalog, or why there is none for this version. */
    readonly search: TextSearch | { readonly unavailable: string },
    /** How long each step of {@link load} took, ms. */
    readonly loadTimings: Readonly<Record<string, number>> = {},
  ) {}

  /**
   * Loads the published checkpoint with the store's latest catalog (so items added since training
   * are scored), opens its user encoder, builds the indexes and warms everything up.
   */
  static async load(store: ArtifactStore, published: Pick<PublishedModel, 'version' | 'checkpointId'>, options: ModelVersionOptions = {}): Promise<ModelVersion> {
    // Wall time of each step (ms), logged by the holder with the swap: where a slow load goes.
    const timings: Record<string, number> = {};
    let mark = performance.now();
    // After each step, a turn of the event loop: much of a load is synchronous native work (ONNX
    // Runtime creates a session before its promise settles; building the TF.js model), and
    // without a yield between steps a swap holds the requests that arrive meanwhile for the sum
    // of the steps instead of the longest one.
    const step = async (name: string): Promise<void> => {
      const now = performance.now();
      timings[name] = Math.round(now - mark);
      await new Promise<void>((resolve) => setImmediate(resolve));
      mark = performance.now();
    };
    const servable = await loadServableModel(store, published.checkpointId, { catalog: 'latest' });
    await step('checkpoint');
    const built: AnnIndex[] = [];
    let encoder: CoalescingEncoder | undefined;
    const scorers: ItemScorer[] = [];
    try {
      // Concurrent requests' histories are encoded in one engine call.
      const { inferenceThread: thread } = options;
      encoder = new CoalescingEncoder(
        await openUserEncoder(servable, { engine: options.engine ?? 'auto', store, ...(options.onnxThreads ? { threads: options.onnxThreads } : {}), ...(thread ? { thread } : {}) }),
      );
      await step('encoder');
      const H = servable.model.hiddenSize;
      // [N + 1, H]: read when prepared, else computed a slice at a time (requests keep being answered)
      const items = options.tableCache ? await options.tableCache.getOrCompute(servable, tf.getBackend()) : await hostItemTable(servable.model);
      await step('itemTable');
      const ann = options.ann ?? AnnConfig.parse({});
      const buildIndex = (vectors: ReturnType<typeof withoutPadding>): Promise<AnnIndex> => (options.annCache ? options.annCache.getOrBuild(vectors, ann) : createAnnIndex(vectors, ann));
      const index = await buildIndex(withoutPadding(items, H));
      built.push(index);
      await step('itemIndex');
      // The items' text vectors (what the prior and search compare): the servable's prior's, or computed once for both.
      const textVectors = servable.textVectors ?? (servable.text ? await textPriorTableInSlices(servable.text) : undefined);
      // Their index, built once for the prior and search.
      let textIndex: AnnIndex | undefined;
      const textIndexOf = async ({ table, dims }: { readonly table: Float32Array; readonly dims: number }): Promise<AnnIndex> => {
        if (!textIndex) built.push((textIndex = await buildIndex(withoutPadding(table, dims))));
        return textIndex;
      };
      let prior: ConstructorParameters<typeof Ranker>[0]['prior'];
      if (servable.textPrior && textVectors) prior = { settings: servable.textPrior, table: textVectors.table, dims: textVectors.dims, index: await textIndexOf(textVectors) };
      await step('textIndex');
      const ranker = new Ranker({ items, hiddenSize: H, itemCount: servable.items.itemCount, index, ...(prior ? { prior } : {}), candidates: options.candidates ?? DEFAULT_CANDIDATES });
      let native: NativeScorers | undefined;
      if (index.kind === 'exact' && (options.itemScorer ?? 'onnx') === 'onnx') {
        try {
          const scorer = (table: Float32Array, dims: number): Promise<ItemScorer> => (thread ? ThreadedItemScorer.create(thread, table, dims) : OnnxItemScorer.create(table, dims));
          const model = await scorer(items, H);
          scorers.push(model);
          const text = prior?.settings.pooling === 'max' ? await scorer(prior.table, prior.dims) : undefined;
          if (text) scorers.push(text);
          native = { model, ...(text && prior ? { text, textTable: prior.table } : {}) };
        } catch (error) {
          log.warn({ checkpointId: published.checkpointId, err: error }, 'native item scores unavailable: the ranker computes every cosine in JS');
        }
      }
      await step('scorer');
      // Search scores a catalog below the exact threshold in full, and goes through the text index above it.
      const searchIndex = textVectors && chooseKind(servable.items.itemCount, ann) === 'hnsw' ? () => textIndexOf(textVectors) : undefined;
      const search = options.textSpec ? await TextSearch.create(store, servable, options.textSpec, textVectors, searchIndex) : { unavailable: 'this server has no text encoder configured' };
      if (!options.textSpec && options.buildSearchIndex) await searchIndex?.();
      await step('search');
      const version = new ModelVersion(published, servable, encoder, items, built, ranker, native, search, timings);
      // One request through every path: the first real request does not pay for kernel set-up.
      const anyItem = servable.items.externalId(1) as string;
      await version.recommend([[anyItem]], 1, [new Set()]);
      version.similar(anyItem, 1);
      await step('warmUp');
      return version;
    } catch (error) {
      for (const index of built) index.dispose();
      await encoder?.dispose();
      for (const scorer of scorers) await scorer.dispose();
      servable.dispose();
      throw error;
    }
  }

  /**
   * Makes, ahead of publishing `checkpointId`, what loading it would make: the ONNX user encoder
   * for the checkpoint and the store's latest catalog (written to the store) and, with
   * `options.annCache`, its HNSW indexes (written to the cache) and, with `options.tableCache`,
   * its host item table. A server that later swaps to the publication finds them and loads in
   * seconds, instead of exporting, computing and building while it answers. Returns how long each step took (ms).
   */
  static async prepare(store: ArtifactStore, checkpointId: string, options: ModelVersionOptions = {}): Promise<Readonly<Record<string, number>>> {
    const version = await ModelVersion.load(store, { version: 0, checkpointId }, { ...options, buildSearchIndex: true });
    const semanticIds = version.servable.lineage.semanticIds;
    version.dispose();
    // Last: a server waiting to load a grown catalog (serving/run.ts) goes once this is there.
    if (semanticIds) await markPrepared(store, checkpointId, semanticIds, version.loadTimings);
    return version.loadTimings;
  }

  describe(): ModelDescription {
    const { lineage } = this.servable;
    return {
      version: this.published.version,
      checkpointId: this.published.checkpointId,
      modelType: this.servable.modelType,
      semanticIds: lineage.semanticIds ?? null,
      embeddings: lineage.embeddings ?? null,
      items: this.servable.items.itemCount,
      engine: this.encoder.kind,
    };
  }

  /** Whether the catalog knows the item. */
  knows(itemId: string): boolean {
    return this.servable.items.denseId(itemId) !== undefined;
  }

  /** The item's dense id in this version's catalog, or undefined when it does not know it. */
  denseId(itemId: string): number | undefined {
    return this.servable.items.denseId(itemId);
  }

  /**
   * The dense ids of the items of `history` that the catalog knows, in order: one catalog lookup
   * per item (a hash lookup in a table of every item id: at 100,000 items ~0.3-0.8 us each under
   * load), for a request to map its history once and pass it to {@link recommendDense}.
   */
  denseHistory(history: readonly string[]): number[] {
    return denseIdsOf(history, this.servable.items);
  }

  /**
   * The top `k` items for each history (external ids, oldest first; ids the catalog does not
   * know are ignored, and a history must have at least one it knows), leaving out each row's
   * `exclude` ids. Fewer than `k` when fewer items remain.
   */
  async recommend(histories: ReadonlyArray<readonly string[]>, k: number, exclude: ReadonlyArray<ReadonlySet<string>>): Promise<ScoredItem[][]> {
    this.check();
    const dense = histories.map((history, b) => knownDenseIds(history, this.servable.items, b));
    return this.recommendDense(dense, k, histories.map((_, b) => this.denseHistory([...(exclude[b] ?? [])])));
  }

  /**
   * {@link recommend} for histories of dense ids (each non-empty, oldest first: {@link denseHistory})
   * and dense ids to leave out.
   */
  async recommendDense(histories: ReadonlyArray<ArrayLike<number>>, k: number, exclude: ReadonlyArray<Iterable<number>>): Promise<ScoredItem[][]> {
    this.check();
    if (histories.length === 0) return [];
    const batch = denseHistoriesBatch(histories, this.servable.maxHistoryLength);
    const users = await this.encoder.encode(batch); // [B * H]
    const H = this.servable.model.hiddenSize;
    const rows = this.servable.items.itemCount + 1;
    const historyOf = (b: number): Int32Array => batch.items.subarray(b * batch.maxLength, b * batch.maxLength + (batch.lengths[b] as number));
    const model = this.scorers?.model;
    const cosines = model ? await model.scores(users, histories.length) : undefined; // [B * (N + 1)]
    await this.fillNeighbours(histories.map((_, b) => historyOf(b)));
    return histories.map((_, b) => {
      const excluded = new Set<number>(exclude[b] ?? []);
      const user = users.subarray(b * H, (b + 1) * H);
      const approximate = cosines && model ? { cosines: cosines.subarray(b * rows, (b + 1) * rows), margin: model.errorBound(norm(user)) } : undefined;
      const ranked = this.ranker.rank(user, historyOf(b), excluded, k, approximate);
      return this.named(ranked.ids, ranked.scores);
    });
  }

  /** Computes, natively and in one run, the text-neighbour lists the histories' ranking needs and the ranker has not cached. */
  private async fillNeighbours(histories: readonly Int32Array[]): Promise<void> {
    const text = this.scorers?.text;
    const table = this.scorers?.textTable;
    if (!text || !table) return;
    const missing = [...new Set(histories.flatMap((h) => this.ranker.missingNeighbours(h)))];
    if (missing.length === 0) return;
    const D = text.dims;
    const queries = new Float32Array(missing.length * D);
    let largest = 0;
    missing.forEach((id, j) => {
      const row = table.subarray(id * D, (id + 1) * D);
      queries.set(row, j * D);
      largest = Math.max(largest, norm(row));
    });
    const cosines = await text.scores(queries, missing.length);
    this.ranker.fillNeighbours(missing, cosines, text.errorBound(largest));
  }

  /** The `k` items nearest to `itemId` in the model's item space (cosine of candidate vectors), itself left out. */
  similar(itemId: string, k: number): ScoredItem[] {
    this.check();
    const dense = this.servable.items.denseId(itemId);
    if (dense === undefined) throw new ValidationError(`item ${JSON.stringify(itemId)} is not in the model's catalog`, { context: { itemId } });
    const H = this.servable.model.hiddenSize;
    const [hits] = (this.indexes[0] as AnnIndex).search(this.items.subarray(dense * H, (dense + 1) * H), k, { exclude: [[dense]] });
    return hits ? this.named(hits.ids, hits.scores) : [];
  }

  /** Takes a lease for a request; release it when the request is done. */
  acquire(): () => void {
    this.check();
    this.leases++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.leases--;
      if (this.retired && this.leases === 0) this.dispose();
    };
  }

  /** No new requests; disposed once the requests in flight are done. */
  retire(): void {
    this.retired = true;
    if (this.leases === 0) this.dispose();
  }

  get inFlight(): number {
    return this.leases;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const index of this.indexes) index.dispose();
    void this.encoder.dispose();
    void this.scorers?.model.dispose();
    void this.scorers?.text?.dispose();
    this.servable.dispose();
  }

  private check(): void {
    if (this.disposed) throw new Error(`model version ${this.published.version} was disposed`);
  }

  private named(ids: Int32Array, scores: Float64Array): ScoredItem[] {
    const out: ScoredItem[] = [];
    ids.forEach((dense, j) => {
      const itemId = this.servable.items.externalId(dense);
      if (itemId !== undefined) out.push({ itemId, score: scores[j] as number });
    });
    return out;
  }
}

function norm(v: Float32Array): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += (v[i] as number) * (v[i] as number);
  return Math.sqrt(s);
}
