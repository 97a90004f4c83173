import type { ArtifactStore } from '../infra/artifacts';
import { applyPca, itemFieldText, loadTextProjection, type TextEncoderSpec } from '../features';
import type { ServableModel } from '../jobs';
import type { ItemEvent, ItemTextField } from '../schemas/events';
import type { AnnIndex } from './ann';
import type { ScoredItem } from './modelVersion';
import { TopK, dot64 } from './ann/topk';

/**
 * Free text -> items: the query is cleaned, embedded and projected exactly as the rebuild did the
 * catalog's texts (the same encoder and the stored PCA of every text field, the query standing in
 * for each field), and items are ranked by the cosine of their text vectors to it (the vectors the
 * text prior uses). No LLM: what the catalog's own words and the encoder know.
 *
 * A catalog below the exact threshold (serving.ann.exactBelow) is scored in full; a larger one is
 * searched through the HNSW index over the same vectors (the text prior's), whose hits are scored
 * as a full scan scores them: scoring 100,000 items x 256 dims on every request would hold the
 * event loop for tens of milliseconds.
 */
export class TextSearch {
  private constructor(
    private readonly projection: Awaited<ReturnType<typeof loadTextProjection>>,
    private readonly fields: readonly ItemTextField[],
    /** `[N + 1, D]` item text vectors, rows L2-normalised, row 0 zeros. */
    private readonly table: Float32Array,
    private readonly dims: number,
    private readonly servable: ServableModel,
    /** The HNSW index over rows 1..N of `table` that candidates come from, or undefined: every item is scored. */
    readonly index: AnnIndex | undefined,
  ) {}

  /**
   * Search over a servable model's catalog, or a reason why there is none (no text tables, no PCA
   * in the lineage, or an encoder that differs from the one the catalog was built with).
   * `vectors` are the items' text vectors (`textPriorTable` of `servable.text`), shared with the
   * ranker; `index` makes (or gives the ranker's) HNSW index over them, absent when the catalog is
   * small enough to score in full. It is asked for only once search is known to be available; the
   * caller owns (and disposes) it.
   */
  static async create(
    store: ArtifactStore,
    servable: ServableModel,
    spec: TextEncoderSpec,
    vectors: { readonly table: Float32Array; readonly dims: number } | undefined,
    index?: () => Promise<AnnIndex>,
  ): Promise<TextSearch | { readonly unavailable: string }> {
    const text = servable.text;
    const pca = servable.lineage.pca;
    if (!text || !vectors) return { unavailable: `checkpoint ${servable.checkpointId} (${servable.modelType}) has no item text tables` };
    if (!pca) return { unavailable: `the catalog of checkpoint ${servable.checkpointId} names no PCA artifact` };
    let projection: Awaited<ReturnType<typeof loadTextProjection>>;
    try {
      projection = await loadTextProjection(await store.open(pca), spec);
    } catch (error) {
      return { unavailable: error instanceof Error ? error.message : String(error) };
    }
    const fields = text.textFields.map((f) => f.name as ItemTextField);
    const missing = fields.filter((f) => !projection.fields.some((p) => p.field === f));
    if (missing.length > 0) return { unavailable: `PCA ${pca} has no projection for the text field(s) ${missing.join(', ')}` };
    return new TextSearch(projection, fields, vectors.table, vectors.dims, servable, index ? await index() : undefined);
  }

  /**
   * The `k` items whose text is nearest to `query` (cosine), best first. Empty when the query has
   * no word the encoder knows.
   */
  async search(query: string, k: number): Promise<ScoredItem[]> {
    const event: ItemEvent = { itemId: 'query', ts: 0 };
    for (const field of this.fields) Object.assign(event, { [field]: field === 'categories' || field === 'features' ? [query] : query });
    const vector = new Float64Array(this.dims); // the fields side by side, as the item table
    let offset = 0;
    let known = false;
    for (const field of this.fields) {
      const { encoder, pca } = this.projection.field(field);
      const text = itemFieldText(event, field); // cleaned as the rebuild cleaned the catalog
      if (text.length > 0) {
        const raw = await encoder.encode([text]); // [1, D]
        // A query with no word the encoder knows encodes to zeros; PCA's centring would turn that into noise.
        if (raw.data.some((v) => v !== 0)) {
          known = true;
          vector.set(applyPca(pca, raw).data.subarray(0, pca.dims), offset);
        }
      }
      offset += pca.dims;
    }
    if (!known) return [];
    let norm = 0;
    for (const v of vector) norm += v * v;
    if (norm === 0) return [];
    const inv = 1 / Math.sqrt(norm);
    const top = new TopK(k);
    if (this.index) {
      // The graph's hits (at its own ef), scored as the full scan scores every item.
      const [hits] = this.index.search(Float32Array.from(vector, (v) => v * inv), k);
      for (const i of hits?.ids ?? []) top.push(i, dot64(vector, this.table, i, this.dims) * inv);
    } else {
      for (let i = 1; i <= this.servable.items.itemCount; i++) top.push(i, dot64(vector, this.table, i, this.dims) * inv);
    }
    const { ids, scores: best } = top.drain();
    return Array.from(ids, (dense, j) => ({ itemId: this.servable.items.externalId(dense) as string, score: best[j] as number }));
  }
}
