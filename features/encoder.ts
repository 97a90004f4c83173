import { sha256, stableStringify } from '../infra/artifacts';
import type { Random } from '../random';
import type { Matrix } from '../infra/matrix';

/**
 * Text encoders: a batch of strings -> a float32 matrix, one row per string.
 *
 * Some encoders learn from the catalog corpus (SIF word frequencies and common component,
 * TF-IDF vocabulary and SVD basis). That is explicit: a {@link TextEncoderSpec} (model + settings)
 * is `fit` on a corpus and gives a {@link FittedTextEncoder} whose {@link EncoderState} is stored
 * with the features artifacts, so that items added between rebuilds are embedded with the same
 * fitted state (`spec.restore(state)`). Stateless encoders (onnx) fit to themselves.
 */

export const ENCODER_NAMES = ['glove-sif', 'onnx', 'tfidf-lsa'] as const;
export type EncoderName = (typeof ENCODER_NAMES)[number];

export interface EncodeOptions {
  /** Called after each batch with the number of texts done so far and the total. */
  readonly onProgress?: (done: number, total: number) => void;
}

/** Anything that turns texts into vectors of a fixed size. */
export interface TextEncoder {
  readonly name: string;
  /** Row length of {@link encode}'s output. */
  readonly dims: number;
  /** Hash identifying the model, its settings and (when fitted) its fitted state, for lineage. */
  fingerprint(): string;
  /** texts [B] -> [B, dims]. Empty texts and texts with nothing the encoder knows give zero rows. */
  encode(texts: readonly string[], options?: EncodeOptions): Promise<Matrix>;
}

/**
 * What a fitted encoder needs to be rebuilt: small JSON `params` and named float32 `arrays`.
 * `format` is bumped when the meaning of the state changes.
 */
export interface EncoderState {
  readonly encoder: EncoderName;
  readonly format: number;
  readonly params: Record<string, unknown>;
  readonly arrays: Record<string, Matrix>;
}

/** A text encoder with the state it was fitted to. */
export interface FittedTextEncoder extends TextEncoder {
  state(): EncoderState;
}

/** An encoder model with its settings, before fitting. */
export interface TextEncoderSpec {
  readonly name: EncoderName;
  /** Hash of the model and settings (not of any fitted state). */
  fingerprint(): string;
  /** The settings that matter for lineage (written into artifact manifests). */
  settings(): Record<string, unknown>;
  /** Fits on a corpus (the non-empty texts of one field). `random` drives any sampling. */
  fit(corpus: readonly string[], random: Random): Promise<FittedTextEncoder>;
  /** Rebuilds a fitted encoder from a stored state; fails when the state is not for this spec. */
  restore(state: EncoderState): Promise<FittedTextEncoder>;
  /** Releases what the spec holds (word vectors, ONNX sessions). */
  dispose(): Promise<void>;
}

/** Fingerprint of a fitted encoder: the spec's fingerprint plus a hash of the fitted state. */
export function fittedFingerprint(specFingerprint: string, state: EncoderState): string {
  const arrays = Object.keys(state.arrays)
    .sort()
    .map((name) => {
      const m = state.arrays[name] as Matrix;
      return [name, m.rows, m.cols, sha256(Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength))];
    });
  return sha256(stableStringify({ spec: specFingerprint, encoder: state.encoder, format: state.format, params: state.params, arrays }));
}

/** Fingerprint of a spec from its name and settings (plus model hashes, included in settings). */
export function specFingerprint(name: EncoderName, settings: Record<string, unknown>): string {
  return sha256(stableStringify({ encoder: name, settings }));
}
