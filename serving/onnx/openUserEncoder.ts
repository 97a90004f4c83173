import { ConfigError } from '../../errors';
import type { ArtifactStore } from '../../infra/artifacts';
import { createLogger } from '../../logging';
import { findOnnxEncoder, writeOnnxEncoder, type EncoderSource } from './exportEncoder';
import { ThreadedUserEncoder, type InferenceThread } from './inferenceThread';
import { readOnnxEncoder } from './manifest';
import { OnnxUserEncoder, type OnnxSessionOptions } from './onnxUserEncoder';
import { TfjsUserEncoder } from './tfjsUserEncoder';
import type { UserEncoder, UserEncoderKind } from './userEncoder';

const log = createLogger('serving.onnx');

/** Which engine serving computes user vectors with; `auto` is the default. */
export type UserEncoderChoice = UserEncoderKind | 'auto';
export const USER_ENCODER_CHOICES: readonly UserEncoderChoice[] = ['auto', 'onnx', 'tfjs'];

export interface OpenUserEncoderOptions extends OnnxSessionOptions {
  /**
   * `auto` (default): ONNX, the faster engine on CPU, falling back to TF.js with a warning when
   * the graph cannot be exported or run; `onnx`: ONNX or an error; `tfjs`: the model's own TF.js
   * code (which reruns CCFRec's Q-Former on every history item). `npm run bench -- onnx` measures
   * both; the numbers are in docs/benchmarks.md.
   */
  readonly engine?: UserEncoderChoice;
  /** Where the ONNX graph is looked up (for this checkpoint and catalog) and written when missing. Required for `onnx` and `auto`. */
  readonly store?: ArtifactStore;
  /** Where the ONNX session runs: this thread (default), or an inference thread of its own. */
  readonly thread?: InferenceThread;
}

/** The ONNX engine for `source`: the stored graph for its checkpoint and catalog, exported (and stored) first when there is none. */
async function onnxEncoder(source: EncoderSource, store: ArtifactStore, options: OpenUserEncoderOptions): Promise<UserEncoder> {
  let id = await findOnnxEncoder(store, source);
  if (id === undefined) {
    id = (await writeOnnxEncoder(store, source, { job: 'streamrec serve' })).id;
    log.info({ checkpointId: source.checkpointId, artifactId: id }, 'exported the user encoder to ONNX');
  }
  if (!options.thread) return OnnxUserEncoder.open(store, id, options);
  const stored = await readOnnxEncoder(store, id);
  return ThreadedUserEncoder.create(options.thread, stored.model, stored.settings, options);
}

/** The user encoder serving uses for `source` (a ServableModel is one), by `options.engine`. */
export async function openUserEncoder(source: EncoderSource, options: OpenUserEncoderOptions = {}): Promise<UserEncoder> {
  const engine = options.engine ?? 'auto';
  if (engine === 'tfjs') return new TfjsUserEncoder(source.model);
  if (!options.store) throw new ConfigError(`user encoder engine ${engine} needs an artifact store (to find or write the ONNX graph of checkpoint ${source.checkpointId})`);
  if (engine === 'onnx') return onnxEncoder(source, options.store, options);
  try {
    return await onnxEncoder(source, options.store, options);
  } catch (error) {
    log.warn({ checkpointId: source.checkpointId, err: error }, 'ONNX user encoder unavailable, using TF.js');
    return new TfjsUserEncoder(source.model);
  }
}
