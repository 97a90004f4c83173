import { ArtifactError, ValidationError } from '../errors';
import { jsonFile, npyFile, type ArtifactDraft, type ArtifactFileDraft, type ArtifactStore, type LoadedArtifact } from '../infra/artifacts';
import type { ItemEvent, ItemTextField } from '../schemas/events';
import { itemFieldText } from './catalog';
import { CLEAN_TEXT_VERSION } from './cleanText';
import type { EncodeOptions, EncoderState, FittedTextEncoder, TextEncoderSpec } from './encoder';
import { createMatrix, type Matrix } from '../infra/matrix';
import { applyPca, explainedVarianceRatio, pcaArrays, pcaFromArrays, type PcaModel } from './pca';

/**
 * The text projection fitted at a rebuild: per text field, the fitted encoder and the PCA that
 * turn a cleaned text into a feature row [K]. It is stored as one `pca` artifact, so that items
 * added between rebuilds get rows in the same space as the catalog's (`loadTextProjection`).
 *
 * Files of the `pca` artifact, per field `f`:
 * - `f.pca_mean.npy` [D], `f.pca_components.npy` [K, D], `f.pca_variances.npy` [K],
 *   `f.pca_scales.npy` [K] (float32; see pca.ts);
 * - `f.encoder.json` (encoder name, state format, JSON params, fitted fingerprint, array shapes)
 *   and `f.encoder.<array>.npy` for each array of the encoder state;
 * plus `projection.json` (fields, dims, whiten, spec fingerprint, per-field totals).
 */

export interface FieldProjection {
  readonly field: ItemTextField;
  readonly encoder: FittedTextEncoder;
  readonly pca: PcaModel;
}

interface ProjectionIndex {
  readonly format: 1;
  readonly encoder: string;
  readonly specFingerprint: string;
  readonly cleanTextVersion: number;
  readonly dims: number;
  readonly whiten: boolean;
  readonly fields: Array<{ field: ItemTextField; encoderFingerprint: string; encoderDims: number; totalVariance: number }>;
}

interface StoredEncoder {
  readonly encoder: string;
  readonly format: number;
  readonly fingerprint: string;
  readonly params: Record<string, unknown>;
  readonly arrays: Record<string, [number, number]>;
}

export class TextProjection {
  /** Output row length K of every field. */
  readonly dims: number;

  constructor(
    readonly fields: readonly FieldProjection[],
    /** Fingerprint of the encoder spec the fields were fitted with. */
    readonly specFingerprint: string,
    /** The `pca` artifact this was loaded from or written to, when known. */
    readonly artifactId?: string,
  ) {
    const dims = new Set(fields.map((f) => f.pca.dims));
    if (fields.length === 0 || dims.size !== 1) {
      throw new ValidationError(`a text projection needs at least one field and one PCA size, got ${fields.length} fields, sizes ${[...dims].join(', ')}`);
    }
    this.dims = fields[0]!.pca.dims;
  }

  field(field: ItemTextField): FieldProjection {
    const found = this.fields.find((f) => f.field === field);
    if (!found) throw new ValidationError(`no projection for field ${field} (has ${this.fields.map((f) => f.field).join(', ')})`);
    return found;
  }

  /**
   * Cleaned texts of one field -> feature rows: texts [B] -> [B, K]. Empty texts (no such text
   * for the item) give zero rows; the others are encoded and projected with the fitted PCA.
   */
  async transformField(field: ItemTextField, texts: readonly string[], options: EncodeOptions = {}): Promise<Matrix> {
    const { encoder, pca } = this.field(field);
    const present = texts.map((t, i) => (t.length > 0 ? i : -1)).filter((i) => i >= 0);
    const out = createMatrix(texts.length, pca.dims);
    if (present.length === 0) {
      options.onProgress?.(texts.length, texts.length);
      return out;
    }
    const encoded = await encoder.encode(present.map((i) => texts[i] as string), options); // [P, D]
    const projected = applyPca(pca, encoded); // [P, K]
    present.forEach((row, p) => out.data.set(projected.data.subarray(p * pca.dims, (p + 1) * pca.dims), row * pca.dims));
    return out;
  }

  /** Feature rows of catalog events (new items between rebuilds): per field, [events.length, K]. */
  async embedItems(events: readonly ItemEvent[]): Promise<Map<ItemTextField, Matrix>> {
    const out = new Map<ItemTextField, Matrix>();
    for (const { field } of this.fields) {
      out.set(field, await this.transformField(field, events.map((e) => itemFieldText(e, field))));
    }
    return out;
  }
}

function encoderFiles(field: ItemTextField, encoder: FittedTextEncoder): ArtifactFileDraft[] {
  const state = encoder.state();
  const arrays = Object.keys(state.arrays).sort();
  const stored: StoredEncoder = {
    encoder: state.encoder,
    format: state.format,
    fingerprint: encoder.fingerprint(),
    params: state.params,
    arrays: Object.fromEntries(arrays.map((name) => [name, [state.arrays[name]!.rows, state.arrays[name]!.cols]])),
  };
  return [
    jsonFile(`${field}.encoder.json`, stored, `fitted ${state.encoder} encoder state for ${field}`),
    ...arrays.map((name) => {
      const m = state.arrays[name]!;
      return npyFile(`${field}.encoder.${name}.npy`, m.data, [m.rows, m.cols], `encoder array ${name} for ${field}`);
    }),
  ];
}

/** What the caller supplies of the artifact draft (infra/artifacts.ts): job, settings, inputs, metrics. */
export type WriteProjectionOptions = Pick<ArtifactDraft, 'job' | 'settings' | 'inputs' | 'metrics'>;

/** Writes the projection as a `pca` artifact (see the module comment). */
export async function writeProjectionArtifact(
  store: ArtifactStore,
  projection: TextProjection,
  options: WriteProjectionOptions,
): Promise<LoadedArtifact> {
  const first = projection.fields[0]!;
  const index: ProjectionIndex = {
    format: 1,
    encoder: first.encoder.name,
    specFingerprint: projection.specFingerprint,
    cleanTextVersion: CLEAN_TEXT_VERSION,
    dims: projection.dims,
    whiten: first.pca.whiten,
    fields: projection.fields.map(({ field, encoder, pca }) => ({
      field,
      encoderFingerprint: encoder.fingerprint(),
      encoderDims: encoder.dims,
      totalVariance: pca.totalVariance,
    })),
  };
  const files: ArtifactFileDraft[] = [jsonFile('projection.json', index, 'fields, sizes and fingerprints')];
  for (const { field, encoder, pca } of projection.fields) {
    const a = pcaArrays(pca);
    files.push(
      npyFile(`${field}.pca_mean.npy`, a.mean.data, [pca.inputDims], `PCA mean of ${field} [D]`),
      npyFile(`${field}.pca_components.npy`, a.components.data, [pca.dims, pca.inputDims], `PCA components of ${field} [K, D]`),
      npyFile(`${field}.pca_variances.npy`, a.variances.data, [pca.dims], `variance per component of ${field} [K]`),
      npyFile(`${field}.pca_scales.npy`, a.scales.data, [pca.dims], `whitening scale per component of ${field} [K]`),
      ...encoderFiles(field, encoder),
    );
  }
  const metrics = {
    ...Object.fromEntries(projection.fields.map((f) => [`explainedVarianceRatio.${f.field}`, explainedVarianceRatio(f.pca)])),
    ...options.metrics,
  };
  return store.write({ kind: 'pca', job: options.job, settings: options.settings, inputs: options.inputs, files, metrics });
}

function asMatrix(data: { shape: number[]; data: unknown; dtype: string }, where: string): Matrix {
  if (data.dtype !== 'float32' || data.shape.length < 1 || data.shape.length > 2) {
    throw new ArtifactError(`${where}: expected a float32 vector or matrix, got ${data.dtype} [${data.shape.join(', ')}]`);
  }
  const [rows, cols] = data.shape.length === 1 ? [1, data.shape[0] as number] : (data.shape as [number, number]);
  return createMatrix(rows, cols, data.data as Float32Array);
}

/**
 * Loads a `pca` artifact as a text projection, rebuilding each field's fitted encoder with `spec`.
 * Fails with an ArtifactError when `spec` is not the encoder (model and settings) the artifact was
 * fitted with, when files are corrupt, or when shapes disagree.
 */
export async function loadTextProjection(artifact: LoadedArtifact, spec: TextEncoderSpec): Promise<TextProjection> {
  if (artifact.manifest.kind !== 'pca') throw new ArtifactError(`artifact ${artifact.id} is a ${artifact.manifest.kind} artifact, not pca`);
  const index = await artifact.readJson<ProjectionIndex>('projection.json');
  if (index.format !== 1 || !Array.isArray(index.fields)) {
    throw new ArtifactError(`artifact ${artifact.id}: projection.json is not format 1`, { context: { path: artifact.dir } });
  }
  if (index.specFingerprint !== spec.fingerprint()) {
    throw new ArtifactError(
      `artifact ${artifact.id} was fitted with ${index.encoder} encoder ${index.specFingerprint.slice(0, 12)}..., ` +
        `the configured ${spec.name} encoder is ${spec.fingerprint().slice(0, 12)}... (different model or settings); ` +
        'rebuild the features or configure the encoder it was built with',
      { context: { path: artifact.dir } },
    );
  }
  const fields: FieldProjection[] = [];
  for (const entry of index.fields) {
    const where = `artifact ${artifact.id} field ${entry.field}`;
    const stored = await artifact.readJson<StoredEncoder>(`${entry.field}.encoder.json`);
    const arrays: Record<string, Matrix> = {};
    for (const [name, shape] of Object.entries(stored.arrays ?? {})) {
      const m = asMatrix(await artifact.readNpy(`${entry.field}.encoder.${name}.npy`), where);
      if (m.rows * m.cols !== shape[0] * shape[1]) throw new ArtifactError(`${where}: encoder array ${name} does not have shape [${shape.join(', ')}]`);
      arrays[name] = createMatrix(shape[0], shape[1], m.data);
    }
    const state: EncoderState = { encoder: stored.encoder as EncoderState['encoder'], format: stored.format, params: stored.params, arrays };
    const encoder = await spec.restore(state);
    if (encoder.fingerprint() !== entry.encoderFingerprint) {
      throw new ArtifactError(`${where}: the restored encoder's fingerprint differs from the stored one (state or model changed)`, {
        context: { path: artifact.dir },
      });
    }
    const read = async (suffix: string) => asMatrix(await artifact.readNpy(`${entry.field}.${suffix}.npy`), where);
    const pca = pcaFromArrays(
      { mean: await read('pca_mean'), components: await read('pca_components'), variances: await read('pca_variances'), scales: await read('pca_scales') },
      { whiten: index.whiten, totalVariance: entry.totalVariance },
      where,
    );
    if (pca.inputDims !== encoder.dims || pca.dims !== index.dims) {
      throw new ArtifactError(`${where}: PCA maps ${pca.inputDims} -> ${pca.dims}, expected ${encoder.dims} -> ${index.dims}`);
    }
    fields.push({ field: entry.field, encoder, pca });
  }
  return new TextProjection(fields, index.specFingerprint, artifact.id);
}
