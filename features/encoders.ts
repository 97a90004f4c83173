import type { FeaturesConfig } from './config';
import type { TextEncoderSpec } from './encoder';
import type { GloveSourceOptions } from './glove';
import { gloveSifSpec } from './gloveSif';
import { onnxSpec } from './onnxEncoder';
import { tfidfLsaSpec } from './tfidfLsa';

/** The settings that choose and configure the encoder (a slice of {@link FeaturesConfig}). */
export type EncoderConfig = Pick<FeaturesConfig, 'encoder' | 'cacheDir' | 'gloveSif' | 'onnx' | 'tfidfLsa'>;

export interface CreateEncoderOptions {
  /** Progress of the one-time GloVe conversion, in bytes of the source JSON. */
  readonly onCacheProgress?: (bytesRead: number, totalBytes: number) => void;
}

/**
 * The encoder spec named by `config.encoder`, built from that encoder's own settings block.
 * glove-sif converts the GloVe JSON into the binary cache on first use; onnx loads the model.
 * Call `dispose()` on the result when done.
 */
export async function createTextEncoderSpec(config: EncoderConfig, options: CreateEncoderOptions = {}): Promise<TextEncoderSpec> {
  switch (config.encoder) {
    case 'glove-sif': {
      const source: GloveSourceOptions = {
        ...(config.cacheDir ? { cacheDir: config.cacheDir } : {}),
        ...(config.gloveSif.sourceFile ? { sourceFile: config.gloveSif.sourceFile } : {}),
        ...(options.onCacheProgress ? { onProgress: options.onCacheProgress } : {}),
      };
      return gloveSifSpec({ a: config.gloveSif.a, removeComponents: config.gloveSif.removeComponents }, source);
    }
    case 'onnx':
      return onnxSpec(config.onnx);
    case 'tfidf-lsa':
      return tfidfLsaSpec(config.tfidfLsa);
  }
}
