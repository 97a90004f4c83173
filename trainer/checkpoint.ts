import { z } from 'zod';
import { ArtifactError, StreamrecError } from '../errors';
import { npyFile, sha256, stableStringify, type ArtifactStore, type LoadedArtifact } from '../infra/artifacts';
import type { RandomState } from '../random';
import type { OptimizerState } from './optimizer';
import type { ArtifactInput } from '../schemas/artifacts';
import { ModelConfig, TEXT_PRIOR_POOLINGS } from './config';
import type { WeightValues } from './layers/params';
import { createModel } from './models';
import type { SequentialRecommender } from './models/contract';
import { sideInfoFingerprint, sideInfoFingerprintInSlices, validateSideInfoInSlices, type ItemSideInfo, type SideInfoFingerprint } from './sideInfo';
import type { TextPriorSettings } from './textPrior';

/**
 * Checkpoints: every model weight as a float32 `.npy` file plus a manifest (via
 * {@link ArtifactStore}, kind `checkpoint`, written atomically) whose settings hold the model
 * type and full config, the fingerprint of the side information (shapes and sha256 of the codes
 * and text tables), the data watermark, the backend and the run; inputs are the side-info
 * artifact ids; metrics are those at save. Frozen text tables are inputs, not weights: they are
 * referenced by hash, not copied.
 */

export const CHECKPOINT_FORMAT = 1;

const DataWatermark = z
  .strictObject({
    dataset: z.string().min(1).describe('Dataset name.'),
    protocol: z.string().min(1).describe('How the split was made.'),
    latestEventMs: z.number().describe('Latest event time in the training data (epoch ms).'),
    trainExamples: z.number().int().nonnegative().describe('Training rows seen.'),
  })
  .describe('What data the model has seen.');
export type DataWatermark = z.infer<typeof DataWatermark>;

/**
 * The model section, parsed by the model's own schema (defaults fill keys added since it was
 * written). CCFRec checkpoints written before the text prior had a pooling trained with the mean.
 */
const CheckpointModel = z.preprocess((raw) => {
  if (raw !== null && typeof raw === 'object' && (raw as { type?: unknown }).type === 'ccfrec' && !('textPriorPooling' in raw)) {
    return { ...raw, textPriorPooling: 'mean' };
  }
  return raw;
}, ModelConfig);

/**
 * Where a model is in the interaction stream: per archive partition (`topic/partition`) the first
 * offset it has not seen, and the examples it has seen but not trained on yet (a micro-epoch's
 * held-out slice, dense ids). The live loop resumes from here: nothing before is read again,
 * nothing after is skipped.
 */
export const StreamState = z.strictObject({
  offsets: z.record(z.string().regex(/^.+\/\d+$/, 'expected topic/partition'), z.number().int().nonnegative()).describe('topic/partition -> next offset.'),
  pending: z.array(z.strictObject({ history: z.array(z.number().int().positive()).min(1), target: z.number().int().positive() })).default([]),
});
export type StreamState = z.infer<typeof StreamState>;

const CheckpointSettings = z.strictObject({
  format: z.literal(CHECKPOINT_FORMAT).describe('Checkpoint layout version.'),
  modelType: z.enum(['ccfrec', 'sasrec']).describe('Which model the weights belong to.'),
  model: CheckpointModel.describe('Full model config, its `type` included.'),
  itemCount: z.number().int().positive().describe('N: dense item ids 1..N.'),
  sideInfo: z
    .strictObject({
      itemCount: z.number().int().positive(),
      levels: z.number().int().positive(),
      codesPerLevel: z.number().int().positive(),
      codesSha256: z.string(),
      textFields: z.array(z.strictObject({ name: z.string(), dims: z.number().int().positive(), sha256: z.string() })),
    })
    .optional()
    .describe('Fingerprint of the side information (CCFRec).'),
  weights: z
    .array(z.strictObject({ name: z.string().min(1), file: z.string().min(1), shape: z.array(z.number().int().nonnegative()) }))
    .min(1)
    .describe('Weight name -> file and shape.'),
  dataWatermark: DataWatermark,
  backend: z.string().min(1).describe('TF.js backend that trained the model.'),
  runId: z.string().min(1).describe('Training run.'),
  epoch: z.number().int().describe('Epoch of the saved weights.'),
  textPrior: z
    .strictObject({
      weight: z.number().finite().min(0),
      lastItems: z.number().int().min(1),
      // Checkpoints written before pooling existed used the mean.
      pooling: z.enum(TEXT_PRIOR_POOLINGS).default('mean'),
    })
    .optional()
    .describe('The text prior tuned with this model on validation (trainer/textPrior.ts): rank by model cosine + weight x text similarity to the last items.'),
  trainingState: z
    .strictObject({
      step: z.number().int().nonnegative().describe('Optimizer updates applied so far (the learning-rate schedule position).'),
      moments: z
        .array(z.strictObject({ name: z.string().min(1), m: z.string().min(1), v: z.string().min(1), shape: z.array(z.number().int().nonnegative()) }))
        .describe('AdamW first and second moments of each trainable weight: weight name -> files and shape.'),
      rng: z
        .strictObject({ seed: z.number().int(), words: z.array(z.number().int().min(0).max(0xffffffff)).length(4), spareNormal: z.number().optional() })
        .optional()
        .describe('The run\'s random generator position, so that a continued run draws what the uninterrupted one would.'),
      stream: StreamState.optional().describe('Where in the stream the model is (the live loop continues from here).'),
    })
    .optional()
    .describe('What continuing the run needs besides the weights (written by runs that can be continued: micro-epochs).'),
});
export type CheckpointSettings = z.infer<typeof CheckpointSettings>;

export interface CheckpointMeta {
  readonly sideInfo?: ItemSideInfo;
  readonly dataWatermark: DataWatermark;
  readonly backend: string;
  readonly runId: string;
  readonly epoch: number;
  readonly metrics?: Record<string, unknown>;
  /** The text prior tuned with the model, when one was. */
  readonly textPrior?: TextPriorSettings;
  /** The job writing it (default `streamrec train`). */
  readonly job?: string;
  /** The checkpoint this one was fine-tuned from (lineage). */
  readonly parent?: string;
  /** The optimizer and random generator where the run stopped, to continue it from this checkpoint. */
  readonly trainingState?: TrainingState;
}

/** A run's state besides the weights: what {@link loadCheckpoint} gives back with `withTrainingState`. */
export interface TrainingState {
  /** Absent for a checkpoint that only records its stream position. */
  readonly optimizer?: OptimizerState;
  readonly rng?: RandomState;
  readonly stream?: StreamState;
}

/**
 * Input artifacts of a model: the item registry always; the codes, PCA and text embeddings for
 * CCFRec; the text embeddings for a SASRec model whose tuned text prior reads them.
 */
function sideInfoInputs(info: ItemSideInfo | undefined, modelType: 'ccfrec' | 'sasrec', textPrior: boolean): ArtifactInput[] {
  if (!info) return [];
  const ids = info.artifactIds;
  const out: ArtifactInput[] = [];
  const add = (role: string, id: string | undefined): void => {
    if (id) out.push({ role, hash: id, artifactId: id });
  };
  add('item_registry', ids.itemRegistry);
  if (modelType !== 'ccfrec') {
    if (textPrior) for (const [field, id] of Object.entries(ids.textEmbeddings ?? {})) add(`embeddings:${field}`, id);
    return out;
  }
  add('semantic_ids', ids.semanticIds);
  add('pca', ids.pca);
  for (const [field, id] of Object.entries(ids.textEmbeddings ?? {})) add(`embeddings:${field}`, id);
  return out;
}

function fingerprintSettings(fp: SideInfoFingerprint): NonNullable<CheckpointSettings['sideInfo']> {
  return { ...fp, textFields: fp.textFields.map((f) => ({ ...f })) };
}

/** Writes the model's weights and manifest; returns the stored artifact. */
export async function saveCheckpoint(store: ArtifactStore, model: SequentialRecommender, meta: CheckpointMeta): Promise<LoadedArtifact> {
  const weights = model.getWeights();
  const files = [...weights].map(([name, w]) => npyFile(`${name}.npy`, w.values, w.shape, `weight ${name}`));
  const state = meta.trainingState;
  if (state?.optimizer) {
    for (const [name, { m, v }] of state.optimizer.moments) {
      files.push(npyFile(`optimizer.m.${name}.npy`, m.values, m.shape, `first moment of ${name}`), npyFile(`optimizer.v.${name}.npy`, v.values, v.shape, `second moment of ${name}`));
    }
  }
  const settings: CheckpointSettings = {
    format: CHECKPOINT_FORMAT,
    modelType: model.modelType,
    model: model.config,
    itemCount: model.itemCount,
    ...(model.modelType === 'ccfrec' && meta.sideInfo ? { sideInfo: fingerprintSettings(sideInfoFingerprint(meta.sideInfo)) } : {}),
    weights: [...weights].map(([name, w]) => ({ name, file: `${name}.npy`, shape: w.shape })),
    dataWatermark: meta.dataWatermark,
    backend: meta.backend,
    runId: meta.runId,
    epoch: meta.epoch,
    ...(meta.textPrior ? { textPrior: { weight: meta.textPrior.weight, lastItems: meta.textPrior.lastItems, pooling: meta.textPrior.pooling } } : {}),
    ...(state
      ? {
          trainingState: {
            step: state.optimizer?.step ?? 0,
            moments: [...(state.optimizer?.moments ?? [])].map(([name, { m }]) => ({ name, m: `optimizer.m.${name}.npy`, v: `optimizer.v.${name}.npy`, shape: [...m.shape] })),
            ...(state.stream ? { stream: state.stream } : {}),
            ...(state.rng ? { rng: { seed: state.rng.seed, words: [...state.rng.words], ...(state.rng.spareNormal !== undefined ? { spareNormal: state.rng.spareNormal } : {}) } } : {}),
          },
        }
      : {}),
  };
  if (model.modelType === 'ccfrec' && !meta.sideInfo) {
    throw new ArtifactError('saveCheckpoint: a CCFRec checkpoint needs the side information it was trained on (meta.sideInfo)');
  }
  return store.write({
    kind: 'checkpoint',
    job: meta.job ?? 'streamrec train',
    settings,
    inputs: [
      ...sideInfoInputs(meta.sideInfo, model.modelType, meta.textPrior !== undefined),
      { role: 'dataset', hash: sha256(stableStringify(meta.dataWatermark)) },
      ...(meta.parent ? [{ role: 'parent_checkpoint', hash: meta.parent, artifactId: meta.parent, description: 'the model this one was fine-tuned from' }] : []),
    ],
    files,
    ...(meta.metrics ? { metrics: meta.metrics } : {}),
  });
}

export interface LoadCheckpointOptions {
  /**
   * Required for CCFRec; must match the checkpoint's fingerprint, or (a grown catalog) extend it:
   * more items, the first N exactly as trained (same codes, same text vectors), new items
   * appended (coded with the same codebooks, their text projected with the stored PCA).
   */
  readonly sideInfo?: ItemSideInfo;
  /** When given, the model must score this many items (the checkpoint's N, or a grown catalog's). */
  readonly itemCount?: number;
  /** When given, the checkpoint must hold this model type. */
  readonly modelType?: 'ccfrec' | 'sasrec';
  /** Also read the optimizer moments and generator position (`trainingState`), when the checkpoint has them. */
  readonly withTrainingState?: boolean;
}

export interface LoadedCheckpoint {
  readonly model: SequentialRecommender;
  readonly artifact: LoadedArtifact;
  readonly settings: CheckpointSettings;
  /** Items the model scores beyond those it was trained on (a grown catalog; 0 otherwise). */
  readonly appendedItems: number;
  /** With `withTrainingState`, the run's state when the checkpoint has one. */
  readonly trainingState?: TrainingState;
}

/**
 * What differs between the side information a checkpoint was trained on and the one given. A
 * given catalog with more items is compared on its first N items (a grown catalog); one with
 * fewer is always a difference (items never leave the registry).
 */
async function fingerprintDifferences(saved: SideInfoFingerprint, info: ItemSideInfo): Promise<string[]> {
  if (info.itemCount < saved.itemCount) {
    return [`itemCount: checkpoint ${saved.itemCount}, given ${info.itemCount} (a catalog never shrinks: this side information is not the one the model was trained on)`];
  }
  const given = await sideInfoFingerprintInSlices(info, saved.itemCount);
  const grown = info.itemCount > saved.itemCount ? ` of the first ${saved.itemCount} items` : '';
  const diffs: string[] = [];
  for (const key of ['levels', 'codesPerLevel'] as const) {
    if (saved[key] !== given[key]) diffs.push(`${key}: checkpoint ${saved[key]}, given ${given[key]}`);
  }
  if (diffs.length === 0 && saved.codesSha256 !== given.codesSha256) {
    diffs.push(`semantic IDs${grown} differ (sha256 ${saved.codesSha256.slice(0, 12)} vs ${given.codesSha256.slice(0, 12)}: new codebooks? only items coded with the existing codebooks can be added)`);
  }
  const savedFields = saved.textFields.map((f) => `${f.name}/${f.dims}`).join(',');
  const givenFields = given.textFields.map((f) => `${f.name}/${f.dims}`).join(',');
  if (savedFields !== givenFields) diffs.push(`textFields: checkpoint [${savedFields}], given [${givenFields}]`);
  else {
    saved.textFields.forEach((f, i) => {
      if (f.sha256 !== given.textFields[i]?.sha256) {
        diffs.push(`text field ${f.name}${grown}: table differs (sha256 ${f.sha256.slice(0, 12)} vs ${given.textFields[i]?.sha256.slice(0, 12)}: another encoder or PCA?)`);
      }
    });
  }
  return diffs;
}

/** A checkpoint's artifact by id (`checkpoint-<16 hex>`, in `store`) or by directory (anywhere). */
export async function openCheckpointArtifact(store: ArtifactStore, idOrDir: string): Promise<LoadedArtifact> {
  return /^checkpoint-[0-9a-f]{16}$/.test(idOrDir) ? store.open(idOrDir) : store.openDir(idOrDir);
}

/**
 * Loads a checkpoint by artifact id (from `store`) or directory, checks that it is a checkpoint
 * of the expected model, that the side information matches what it was trained on, that every
 * weight is present with its shape and intact (size and sha256), and returns the model.
 * Anything else is an {@link ArtifactError} saying what differs.
 */
export async function loadCheckpoint(store: ArtifactStore, idOrDir: string, options: LoadCheckpointOptions = {}): Promise<LoadedCheckpoint> {
  const artifact = await openCheckpointArtifact(store, idOrDir);
  const id = artifact.id;
  const fail = (message: string, cause?: unknown): never => {
    throw new ArtifactError(`checkpoint ${id}: ${message}`, { context: { path: artifact.dir }, ...(cause ? { cause } : {}) });
  };
  if (artifact.manifest.kind !== 'checkpoint') fail(`is a ${artifact.manifest.kind} artifact, not a checkpoint`);
  const parsedSettings = CheckpointSettings.safeParse(artifact.manifest.settings);
  if (!parsedSettings.success) {
    const issue = parsedSettings.error.issues[0];
    fail(`settings are invalid at ${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'invalid'} (format ${CHECKPOINT_FORMAT} expected)`);
  }
  const settings = parsedSettings.data as CheckpointSettings;
  if (settings.model.type !== settings.modelType) fail(`model section is a ${settings.model.type} config, the checkpoint says ${settings.modelType}`);
  if (options.modelType && settings.modelType !== options.modelType) fail(`holds a ${settings.modelType} model, a ${options.modelType} model was asked for`);
  // The items the loaded model scores: the trained N, or a grown catalog's (CCFRec only).
  let itemCount = settings.itemCount;
  if (settings.modelType === 'ccfrec') {
    if (!options.sideInfo) fail('is a CCFRec checkpoint; loading it needs the side information it was trained on');
    if (!settings.sideInfo) fail('is a CCFRec checkpoint without a side-information fingerprint');
    const info = options.sideInfo as ItemSideInfo;
    const diffs = await fingerprintDifferences(settings.sideInfo as SideInfoFingerprint, info);
    if (diffs.length > 0) fail(`side information does not match the checkpoint: ${diffs.join('; ')}`);
    // Validated here a slice at a time (a server loads checkpoints beside live traffic); the model's constructor then does not scan it again.
    try {
      await validateSideInfoInSlices(info);
    } catch (cause) {
      fail(`cannot build its ${settings.modelType} model: ${cause instanceof Error ? cause.message : String(cause)}`, cause);
    }
    itemCount = info.itemCount;
  }
  if (options.itemCount !== undefined && options.itemCount !== itemCount) {
    fail(
      settings.modelType === 'sasrec' && options.itemCount > settings.itemCount
        ? `was trained for itemCount ${settings.itemCount}, the data has ${options.itemCount}: SASRec learns one embedding per item, so new items need a retrained model (CCFRec codes them from their text)`
        : `was trained for itemCount ${settings.itemCount}, the data has ${options.itemCount}`,
    );
  }

  let model: SequentialRecommender;
  try {
    // No random init: every weight is set from the checkpoint below (and checked to be there).
    model = createModel(settings.model, { itemCount, ...(options.sideInfo ? { sideInfo: options.sideInfo } : {}) }, null);
  } catch (cause) {
    return fail(`cannot build its ${settings.modelType} model: ${cause instanceof Error ? cause.message : String(cause)}`, cause);
  }
  try {
    const expected = new Map(model.weights.map((w) => [w.name, w.variable.shape]));
    const saved = new Map(settings.weights.map((w) => [w.name, w]));
    const missing = [...expected.keys()].filter((n) => !saved.has(n));
    const extra = [...saved.keys()].filter((n) => !expected.has(n));
    if (missing.length > 0 || extra.length > 0) {
      fail(`weights do not match a ${settings.modelType} model: ${missing.length > 0 ? `missing ${missing.join(', ')}` : ''}${missing.length > 0 && extra.length > 0 ? '; ' : ''}${extra.length > 0 ? `unexpected ${extra.join(', ')}` : ''}`);
    }
    const values = new Map<string, WeightValues>();
    for (const [name, shape] of expected) {
      const entry = saved.get(name)!;
      const array = await artifact.readNpy(entry.file);
      if (array.dtype !== 'float32') fail(`weight ${name} is ${array.dtype}, float32 expected`);
      if (array.shape.length !== shape.length || array.shape.some((d, i) => d !== shape[i])) {
        fail(`weight ${name} has shape [${array.shape.join(', ')}], the model expects [${shape.join(', ')}]`);
      }
      values.set(name, { shape: array.shape, values: array.data as Float32Array });
    }
    model.setWeights(values);
    let trainingState: TrainingState | undefined;
    if (options.withTrainingState && settings.trainingState) {
      const saved = settings.trainingState;
      const moments = new Map<string, { m: WeightValues; v: WeightValues }>();
      for (const entry of saved.moments) {
        const read = async (file: string, which: string): Promise<WeightValues> => {
          const array = await artifact.readNpy(file);
          if (array.dtype !== 'float32' || array.shape.length !== entry.shape.length || array.shape.some((d, i) => d !== entry.shape[i])) {
            fail(`${which} of ${entry.name} is ${array.dtype} [${array.shape.join(', ')}], the manifest says float32 [${entry.shape.join(', ')}]`);
          }
          return { shape: array.shape, values: array.data as Float32Array };
        };
        moments.set(entry.name, { m: await read(entry.m, 'first moment'), v: await read(entry.v, 'second moment') });
      }
      trainingState = { ...(saved.moments.length > 0 ? { optimizer: { step: saved.step, moments } } : {}), ...(saved.rng ? { rng: saved.rng } : {}), ...(saved.stream ? { stream: saved.stream } : {}) };
    }
    return { model, artifact, settings, appendedItems: itemCount - settings.itemCount, ...(trainingState ? { trainingState } : {}) };
  } catch (error) {
    model.dispose();
    if (error instanceof ArtifactError) throw error;
    throw new ArtifactError(`checkpoint ${id}: ${error instanceof Error ? error.message : String(error)}`, {
      cause: error,
      context: { path: artifact.dir },
      retriable: error instanceof StreamrecError ? error.retriable : false,
    });
  }
}
