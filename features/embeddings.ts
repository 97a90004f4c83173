import { ArtifactError } from '../errors';
import { jsonFile, npyFile, type ArtifactDraft, type ArtifactStore, type LoadedArtifact } from '../infra/artifacts';
import { ITEM_TEXT_FIELDS, type ItemTextField } from '../schemas/events';
import { createMatrix, type Matrix } from '../infra/matrix';

/**
 * The `embeddings` artifact: one float32 matrix per text field, `<field>.npy` [N, K], where row
 * i - 1 belongs to the item with dense id i (1..N; dense id 0, padding, has no row), plus
 * `item_ids.json` (the external ids in the same order) and `layout.json` (fields, N, K).
 * Items without text in a field have a zero row in that field.
 */

export interface ItemEmbeddings {
  readonly artifactId: string;
  readonly fields: readonly ItemTextField[];
  /** External ids; element i has dense id i + 1 and row i. [N] */
  readonly itemIds: readonly string[];
  /** Per field [N, K]. */
  readonly matrices: ReadonlyMap<ItemTextField, Matrix>;
  readonly dims: number;
}

interface Layout {
  readonly format: 1;
  readonly fields: ItemTextField[];
  readonly rows: number;
  readonly dims: number;
  readonly rowOrder: string;
}

/** What the caller supplies of the artifact draft (infra/artifacts.ts): job, settings, inputs, metrics. */
export type WriteEmbeddingsOptions = Pick<ArtifactDraft, 'job' | 'settings' | 'inputs' | 'metrics'>;

/** Writes per-field matrices (all [itemIds.length, K]) as an `embeddings` artifact. */
export async function writeEmbeddingsArtifact(
  store: ArtifactStore,
  itemIds: readonly string[],
  matrices: ReadonlyMap<ItemTextField, Matrix>,
  options: WriteEmbeddingsOptions,
): Promise<LoadedArtifact> {
  const fields = [...matrices.keys()];
  const dims = matrices.get(fields[0] as ItemTextField)?.cols ?? 0;
  for (const [field, m] of matrices) {
    if (m.rows !== itemIds.length || m.cols !== dims) {
      throw new ArtifactError(`embeddings for ${field} have shape [${m.rows}, ${m.cols}], expected [${itemIds.length}, ${dims}]`);
    }
  }
  const layout: Layout = { format: 1, fields, rows: itemIds.length, dims, rowOrder: 'row i-1 = dense item id i' };
  const files = [
    jsonFile('layout.json', layout, 'fields, rows N, dims K'),
    jsonFile('item_ids.json', itemIds, 'external item ids; element i has dense id i + 1'),
    ...fields.map((f) => {
      const m = matrices.get(f) as Matrix;
      return npyFile(`${f}.npy`, m.data, [m.rows, m.cols], `${f} features [N, K]; row i-1 = dense item id i`);
    }),
  ];
  return store.write({ kind: 'embeddings', job: options.job, settings: options.settings, inputs: options.inputs, files, ...(options.metrics ? { metrics: options.metrics } : {}) });
}

/** Reads an `embeddings` artifact, checking hashes (via the store) and that all shapes agree. */
export async function readItemEmbeddings(artifact: LoadedArtifact): Promise<ItemEmbeddings> {
  const where = `artifact ${artifact.id}`;
  if (artifact.manifest.kind !== 'embeddings') throw new ArtifactError(`${where} is a ${artifact.manifest.kind} artifact, not embeddings`);
  const layout = await artifact.readJson<Layout>('layout.json');
  const fieldsOk = Array.isArray(layout.fields) && layout.fields.every((f) => (ITEM_TEXT_FIELDS as readonly string[]).includes(f));
  if (layout.format !== 1 || !fieldsOk || !Number.isInteger(layout.rows) || !Number.isInteger(layout.dims)) {
    throw new ArtifactError(`${where}: layout.json is not a format-1 layout with fields, rows and dims`, { context: { path: artifact.dir } });
  }
  const itemIds = await artifact.readJson<string[]>('item_ids.json');
  if (!Array.isArray(itemIds) || itemIds.length !== layout.rows) {
    throw new ArtifactError(`${where}: item_ids.json lists ${Array.isArray(itemIds) ? itemIds.length : 'no'} ids, layout says ${layout.rows} rows`, {
      context: { path: artifact.dir },
    });
  }
  const matrices = new Map<ItemTextField, Matrix>();
  for (const field of layout.fields) {
    const npy = await artifact.readNpy(`${field}.npy`);
    const [rows, cols] = npy.shape;
    if (npy.dtype !== 'float32' || npy.shape.length !== 2 || rows !== layout.rows || cols !== layout.dims) {
      throw new ArtifactError(
        `${where}: ${field}.npy is ${npy.dtype} [${npy.shape.join(', ')}], expected float32 [${layout.rows}, ${layout.dims}]`,
        { context: { path: artifact.dir, field } },
      );
    }
    matrices.set(field, createMatrix(layout.rows, layout.dims, npy.data as Float32Array));
  }
  return { artifactId: artifact.id, fields: layout.fields, itemIds, matrices, dims: layout.dims };
}
