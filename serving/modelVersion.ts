import { ValidationError } from '../errors';
import type { ArtifactStore } from '../infra/artifacts';
import type { PublishedModel } from '../infra/registry';
import { tf } from '../infra/tf';
import type { TextEncoderSpec } from '../features';
import { loadServableModel, type ServableModel } from '../jobs';
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
}

/**
 * A published model made ready to answer: the servable model (the trained model, its tuned text
 * prior, the catalog it scores, grown catalogs included) and its item table, held for the
 * version's whole life. Scores are what the offline evaluation ranks by (model cosine + tuned
 * prior); every item of the catalog is scored (exact ranking).
 *
 * Versions are shared by the requests in flight: {@link acquire} before use and release after;
 * a retired version is disposed when its last request releases it.
 */
export class ModelVersion {
  private readonly itemTable: tf.Tensor2D; // [N + 1, H], L2-normalised
  private leases = 0;
  private retired = false;
  private disposed = false;

  /** Free-text search over the catalog, or why there is none for this version. */
  readonly search: TextSearch | { readonly unavailable: string };

  private constructor(
    readonly published: PublishedModel,
    readonly servable: ServableModel,
    search: TextSearch | { readonly unavailable: string },
  ) {
    this.search = search;
    this.itemTable = servable.model.itemTable();
  }

  /**
   * Loads the published checkpoint (the store's latest catalog, so new items are scored) and warms
   * it up. With a text encoder spec (the rebuild's features config), the version can also search.
   */
  static async load(store: ArtifactStore, published: PublishedModel, options: { readonly textSpec?: TextEncoderSpec } = {}): Promise<ModelVersion> {
    const servable = await loadServableModel(store, published.checkpointId, { catalog: 'latest' });
    let version: ModelVersion | undefined;
    try {
      const search = options.textSpec ? await TextSearch.create(store, servable, options.textSpec) : { unavailable: 'this server has no text encoder configured' };
      version = new ModelVersion(published, servable, search);
      // One request through every path: the first real request does not pay for kernel set-up.
      const anyItem = servable.items.externalId(1) as string;
      await version.recommend([[anyItem]], 1, [new Set()]);
      version.similar(anyItem, 1);
      return version;
    } catch (error) {
      if (version) version.dispose();
      else servable.dispose();
      throw error;
    }
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
    };
  }

  /** Whether the catalog knows the item. */
  knows(itemId: string): boolean {
    return this.servable.items.denseId(itemId) !== undefined;
  }

  /**
   * The top `k` items for each history (external ids, oldest first; ids the catalog does not
   * know are ignored, and a history must have at least one it knows), leaving out padding and
   * each row's `exclude` ids. Fewer than `k` when fewer items remain.
   */
  async recommend(histories: ReadonlyArray<readonly string[]>, k: number, exclude: ReadonlyArray<ReadonlySet<string>>): Promise<ScoredItem[][]> {
    this.check();
    if (histories.length === 0) return [];
    const batch = this.servable.batchOf(histories); // throws when a history has no known item
    const width = this.servable.items.itemCount + 1;
    const hidden = new Float32Array(histories.length * width);
    exclude.forEach((ids, b) => {
      hidden[b * width] = Number.NEGATIVE_INFINITY;
      for (const id of ids) {
        const dense = this.servable.items.denseId(id);
        if (dense !== undefined) hidden[b * width + dense] = Number.NEGATIVE_INFINITY;
      }
    });
    const take = Math.min(k, width - 1);
    const { values, indices } = tf.tidy(() => {
      const scores = tf.add(this.servable.scores(batch, this.itemTable), tf.tensor2d(hidden, [histories.length, width])); // [B, N + 1]
      return tf.topk(scores, take);
    });
    try {
      const [v, i] = await Promise.all([values.data(), indices.data()]);
      return histories.map((_, b) => this.items(v, i, b * take, take));
    } finally {
      values.dispose();
      indices.dispose();
    }
  }

  /** The `k` items nearest to `itemId` in the model's item space (cosine of candidate vectors), itself left out. */
  similar(itemId: string, k: number): ScoredItem[] {
    this.check();
    const dense = this.servable.items.denseId(itemId);
    if (dense === undefined) throw new ValidationError(`item ${JSON.stringify(itemId)} is not in the model's catalog`, { context: { itemId } });
    const width = this.servable.items.itemCount + 1;
    const take = Math.min(k, width - 2);
    const { values, indices } = tf.tidy(() => {
      const query = tf.slice(this.itemTable, [dense, 0], [1, -1]); // [1, H]
      const scores = tf.matMul(query, this.itemTable, false, true); // [1, N + 1]
      const mask = new Float32Array(width);
      mask[0] = Number.NEGATIVE_INFINITY;
      mask[dense] = Number.NEGATIVE_INFINITY;
      return tf.topk(tf.add(scores, tf.tensor2d(mask, [1, width])), take);
    });
    try {
      return this.items(values.dataSync(), indices.dataSync(), 0, take);
    } finally {
      values.dispose();
      indices.dispose();
    }
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
    this.itemTable.dispose();
    this.servable.dispose();
  }

  private check(): void {
    if (this.disposed) throw new Error(`model version ${this.published.version} was disposed`);
  }

  private items(values: ArrayLike<number>, indices: ArrayLike<number>, offset: number, count: number): ScoredItem[] {
    const out: ScoredItem[] = [];
    for (let j = 0; j < count; j++) {
      const score = values[offset + j] as number;
      if (score === Number.NEGATIVE_INFINITY || Number.isNaN(score)) continue;
      const itemId = this.servable.items.externalId(indices[offset + j] as number);
      if (itemId !== undefined) out.push({ itemId, score });
    }
    return out;
  }
}
