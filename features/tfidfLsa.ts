import { ArtifactError, ValidationError } from '../errors';
import { createLogger } from '../logging';
import type { Random } from '../random';
import {
  fittedFingerprint,
  specFingerprint,
  type EncodeOptions,
  type EncoderState,
  type FittedTextEncoder,
  type TextEncoderSpec,
} from './encoder';
import { createMatrix, type Matrix } from '../infra/matrix';
import { csrFromRows, randomizedSvd, type CsrMatrix } from './sparse';
import { splitCompound, wordTokens } from './tokenize';

/**
 * `tfidf-lsa`: TF-IDF over the catalog's own vocabulary, then a truncated SVD (latent semantic
 * analysis). Needs no external model at all.
 *
 * Fitting (scikit-learn TfidfVectorizer + TruncatedSVD semantics): terms are word tokens of 2+
 * characters (compounds split at hyphens); the vocabulary keeps terms in at least `minDf`
 * documents, the `maxFeatures` most frequent by document frequency; tf is `1 + ln(count)` when
 * `sublinearTf`, else the count; idf = ln((1 + n) / (1 + df)) + 1; rows are L2-normalised; the
 * SVD basis V [dims, V] comes from a seeded randomized SVD. Encoding: the same TF-IDF row times
 * V^T, i.e. sklearn's `TruncatedSVD.transform`. Texts with no vocabulary term give zero rows.
 * When the corpus supports fewer than `dims` directions (few documents or terms), the encoder
 * has fewer dims (logged).
 */

const log = createLogger('features.tfidf_lsa');
const STATE_FORMAT = 1;
const MIN_TOKEN_LENGTH = 2;

export interface TfidfLsaSettings {
  readonly dims: number;
  readonly minDf: number;
  readonly maxFeatures: number;
  readonly sublinearTf: boolean;
  readonly oversample: number;
  readonly powerIterations: number;
}

function terms(text: string): string[] {
  return wordTokens(text)
    .flatMap(splitCompound)
    .filter((t) => t.length >= MIN_TOKEN_LENGTH);
}

function termCounts(text: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const t of terms(text)) counts.set(t, (counts.get(t) ?? 0) + 1);
  return counts;
}

/** TF-IDF rows (L2-normalised) of `texts` over a fixed vocabulary. [texts.length, vocabulary.length] */
function tfidfRows(texts: readonly string[], index: Map<string, number>, idf: Float64Array, sublinearTf: boolean): CsrMatrix {
  const rows = texts.map((text) => {
    const entries: Array<[number, number]> = [];
    for (const [term, count] of termCounts(text)) {
      const c = index.get(term);
      if (c === undefined) continue;
      entries.push([c, (sublinearTf ? 1 + Math.log(count) : count) * (idf[c] as number)]);
    }
    const norm = Math.sqrt(entries.reduce((s, [, v]) => s + v * v, 0));
    return entries.sort((a, b) => a[0] - b[0]).map(([c, v]) => [c, v / norm] as [number, number]);
  });
  return csrFromRows(rows, idf.length);
}

class TfidfLsaEncoder implements FittedTextEncoder {
  readonly name = 'tfidf-lsa';
  readonly dims: number;
  private readonly index: Map<string, number>;
  private readonly fp: string;

  constructor(
    specFp: string,
    private readonly vocabulary: readonly string[],
    private readonly idf: Float64Array,
    private readonly sublinearTf: boolean,
    /** [dims, V] */
    private readonly components: Matrix,
  ) {
    this.dims = components.rows;
    this.index = new Map(vocabulary.map((t, i) => [t, i]));
    this.fp = fittedFingerprint(specFp, this.state());
  }

  fingerprint(): string {
    return this.fp;
  }

  state(): EncoderState {
    return {
      encoder: 'tfidf-lsa',
      format: STATE_FORMAT,
      params: { vocabulary: this.vocabulary, idf: Array.from(this.idf), sublinearTf: this.sublinearTf, minTokenLength: MIN_TOKEN_LENGTH },
      arrays: { components: this.components },
    };
  }

  async encode(texts: readonly string[], options: EncodeOptions = {}): Promise<Matrix> {
    const x = tfidfRows(texts, this.index, this.idf, this.sublinearTf);
    const { dims } = this;
    const v = this.components.cols;
    const out = createMatrix(texts.length, dims); // [B, dims] = X [B, V] @ components^T [V, dims]
    for (let r = 0; r < x.rows; r++) {
      for (let p = x.indptr[r] as number; p < (x.indptr[r + 1] as number); p++) {
        const value = x.values[p] as number;
        const c = x.indices[p] as number;
        for (let j = 0; j < dims; j++) out.data[r * dims + j] = (out.data[r * dims + j] as number) + value * (this.components.data[j * v + c] as number);
      }
    }
    options.onProgress?.(texts.length, texts.length);
    return out;
  }
}

/** The tfidf-lsa encoder spec with its settings. */
export function tfidfLsaSpec(settings: TfidfLsaSettings): TextEncoderSpec {
  const lineage = { ...settings, tokenizer: 'words-v1', minTokenLength: MIN_TOKEN_LENGTH };
  const fp = specFingerprint('tfidf-lsa', lineage);
  return {
    name: 'tfidf-lsa',
    fingerprint: () => fp,
    settings: () => lineage,
    async fit(corpus: readonly string[], random: Random): Promise<FittedTextEncoder> {
      const docs = corpus.map(termCounts);
      const df = new Map<string, number>();
      for (const doc of docs) for (const term of doc.keys()) df.set(term, (df.get(term) ?? 0) + 1);
      const vocabulary = [...df.entries()]
        .filter(([, n]) => n >= settings.minDf)
        .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
        .slice(0, settings.maxFeatures)
        .map(([term]) => term);
      if (vocabulary.length === 0) {
        throw new ValidationError(
          `tfidf-lsa: no term appears in at least minDf=${settings.minDf} of the ${corpus.length} texts; lower minDf or add text`,
        );
      }
      const n = corpus.length;
      const idf = Float64Array.from(vocabulary, (t) => Math.log((1 + n) / (1 + (df.get(t) as number))) + 1);
      const index = new Map(vocabulary.map((t, i) => [t, i]));
      const x = tfidfRows(corpus, index, idf, settings.sublinearTf);
      const k = Math.min(settings.dims, x.rows, x.cols);
      if (k < settings.dims) {
        log.warn({ requested: settings.dims, dims: k, texts: x.rows, terms: x.cols }, 'tfidf-lsa: corpus supports fewer dims than requested');
      }
      const svd = randomizedSvd(x, k, random, { oversample: settings.oversample, powerIterations: settings.powerIterations });
      log.debug({ texts: n, terms: vocabulary.length, dims: k }, 'tfidf-lsa fitted');
      return new TfidfLsaEncoder(fp, vocabulary, idf, settings.sublinearTf, svd.components);
    },
    async restore(state: EncoderState): Promise<FittedTextEncoder> {
      const { vocabulary, idf, sublinearTf } = state.params as { vocabulary?: unknown; idf?: unknown; sublinearTf?: unknown };
      const components = state.arrays.components;
      const ok =
        state.encoder === 'tfidf-lsa' &&
        state.format === STATE_FORMAT &&
        Array.isArray(vocabulary) &&
        vocabulary.every((t) => typeof t === 'string') &&
        Array.isArray(idf) &&
        idf.length === vocabulary.length &&
        typeof sublinearTf === 'boolean' &&
        components !== undefined &&
        components.cols === vocabulary.length;
      if (!ok) {
        throw new ArtifactError(
          `tfidf-lsa: stored encoder state is not a format-${STATE_FORMAT} tfidf-lsa state with vocabulary, idf and ` +
            `components [dims, vocabulary] (got encoder ${state.encoder}, format ${state.format})`,
        );
      }
      return new TfidfLsaEncoder(fp, vocabulary as string[], Float64Array.from(idf as number[]), sublinearTf, components);
    },
    async dispose(): Promise<void> {},
  };
}
