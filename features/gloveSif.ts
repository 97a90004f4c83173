import { ArtifactError } from '../errors';
import { createLogger } from '../logging';
import {
  fittedFingerprint,
  specFingerprint,
  type EncodeOptions,
  type EncoderState,
  type FittedTextEncoder,
  type TextEncoderSpec,
} from './encoder';
import { ensureGloveCache, loadGloveTable, type GloveSourceOptions, type GloveTable } from './glove';
import { symmetricEigen } from './eigen';
import { createMatrix, gramMatrix, type Matrix } from '../infra/matrix';
import { splitCompound, stripDiacritics, wordTokens } from './tokenize';

/**
 * `glove-sif` (the default encoder): smooth-inverse-frequency weighted averages of pretrained
 * GloVe vectors with the common component removed (Arora, Liang & Ma 2017, "A Simple but
 * Tough-to-Beat Baseline for Sentence Embeddings").
 *
 * - Words: lowercase word tokens (tokenize.ts) looked up in the GloVe vocabulary as they are,
 *   then without diacritics, then (for compounds such as `adhesive-backed`) part by part.
 * - Fitting on a corpus: p(w) = count of w / count of all in-vocabulary words in the corpus;
 *   the first principal component(s) u of the corpus's weighted averages (uncentered, as in the
 *   paper's code) are stored.
 * - Encoding: v = (1/|s|) sum_w a / (a + p(w)) vec(w) over the in-vocabulary words of the text,
 *   then v <- v - sum_u (u . v) u. Words not seen in the fitting corpus have p(w) = 0 (weight 1).
 *   Texts with no known word (empty, non-English) get a zero vector.
 */

const log = createLogger('features.glove_sif');
const STATE_FORMAT = 1;

export interface GloveSifSettings {
  /** SIF smoothing a (the paper uses 1e-3 to 1e-4). */
  readonly a: number;
  /** How many principal components to remove (the paper: 1). */
  readonly removeComponents: number;
}

class GloveSifEncoder implements FittedTextEncoder {
  readonly name = 'glove-sif';
  readonly dims: number;
  private readonly lookupCache = new Map<string, number[]>();
  private readonly fp: string;

  constructor(
    specFp: string,
    private readonly table: GloveTable,
    private readonly a: number,
    /** Row index -> corpus count, and the corpus total. */
    private readonly counts: ReadonlyMap<number, number>,
    private readonly total: number,
    /** Components to remove. [c, dims] */
    private readonly components: Matrix,
  ) {
    this.dims = table.dims;
    this.fp = fittedFingerprint(specFp, this.state());
  }

  fingerprint(): string {
    return this.fp;
  }

  state(): EncoderState {
    const rows = [...this.counts.keys()].sort((x, y) => x - y);
    const words = rows.map((r) => this.table.index.word(r) as string);
    return {
      encoder: 'glove-sif',
      format: STATE_FORMAT,
      params: { a: this.a, total: this.total, words, counts: rows.map((r) => this.counts.get(r) as number) },
      arrays: { components: this.components },
    };
  }

  async encode(texts: readonly string[], options: EncodeOptions = {}): Promise<Matrix> {
    const out = createMatrix(texts.length, this.dims); // [B, dims]
    texts.forEach((text, i) => {
      this.sifAverage(text, out.data.subarray(i * this.dims, (i + 1) * this.dims));
      if (options.onProgress && (i + 1) % 1000 === 0) options.onProgress(i + 1, texts.length);
    });
    removeComponents(out, this.components);
    options.onProgress?.(texts.length, texts.length);
    return out;
  }

  /** Writes the weighted average of the text's word vectors into `into` (zeros when none). */
  sifAverage(text: string, into: Float32Array): void {
    const rows = wordRows(text, this.table, this.lookupCache);
    if (rows.length === 0) return;
    const { vectors, dims } = this.table;
    const acc = new Float64Array(dims);
    for (const row of rows) {
      const p = (this.counts.get(row) ?? 0) / (this.total || 1);
      const weight = this.a / (this.a + p);
      const base = row * dims;
      for (let j = 0; j < dims; j++) acc[j] = (acc[j] as number) + weight * (vectors[base + j] as number);
    }
    for (let j = 0; j < dims; j++) into[j] = (acc[j] as number) / rows.length;
  }
}

/** GloVe rows of the words of `text`, with the lookup rules of the module comment. */
function wordRows(text: string, table: GloveTable, cache: Map<string, number[]>): number[] {
  const out: number[] = [];
  for (const token of wordTokens(text)) {
    let rows = cache.get(token);
    if (rows === undefined) {
      rows = [];
      const direct = lookup(token, table);
      if (direct !== undefined) rows.push(direct);
      else if (token.includes('-')) {
        for (const part of splitCompound(token)) {
          const r = lookup(part, table);
          if (r !== undefined) rows.push(r);
        }
      }
      if (cache.size < 1_000_000) cache.set(token, rows);
    }
    for (const r of rows) out.push(r);
  }
  return out;
}

function lookup(word: string, table: GloveTable): number | undefined {
  const direct = table.index.get(word);
  if (direct !== undefined) return direct;
  const plain = stripDiacritics(word);
  return plain === word ? undefined : table.index.get(plain);
}

/** x <- x - sum_c (x . u_c) u_c for every row. x [N, D], components [c, D] (unit rows). */
function removeComponents(x: Matrix, components: Matrix): void {
  const d = x.cols;
  for (let r = 0; r < x.rows; r++) {
    const base = r * d;
    for (let c = 0; c < components.rows; c++) {
      const u = c * d;
      let dot = 0;
      for (let j = 0; j < d; j++) dot += (x.data[base + j] as number) * (components.data[u + j] as number);
      if (dot === 0) continue;
      for (let j = 0; j < d; j++) x.data[base + j] = (x.data[base + j] as number) - dot * (components.data[u + j] as number);
    }
  }
}

/**
 * The glove-sif spec. Creating it makes sure the binary GloVe cache exists (converting the JSON
 * on first use); the vectors are loaded on the first fit/restore and released by `dispose`.
 */
export async function gloveSifSpec(settings: GloveSifSettings, source: GloveSourceOptions = {}): Promise<TextEncoderSpec> {
  const info = await ensureGloveCache(source);
  const lineage = {
    ...settings,
    tokenizer: 'words-v1',
    vectors: { ...info.source, rows: info.rows, dims: info.dims, sha256: info.vectorsSha256, vocabSha256: info.vocabSha256 },
  };
  const fp = specFingerprint('glove-sif', lineage);
  let table: Promise<GloveTable> | undefined;
  const getTable = () => {
    table ??= loadGloveTable(source);
    return table;
  };
  return {
    name: 'glove-sif',
    fingerprint: () => fp,
    settings: () => lineage,
    async fit(corpus: readonly string[]): Promise<FittedTextEncoder> {
      const t = await getTable();
      const cache = new Map<string, number[]>();
      const counts = new Map<number, number>();
      let total = 0;
      for (const text of corpus) {
        for (const row of wordRows(text, t, cache)) {
          counts.set(row, (counts.get(row) ?? 0) + 1);
          total++;
        }
      }
      const noRemoval = createMatrix(0, t.dims);
      const draft = new GloveSifEncoder(fp, t, settings.a, counts, total, noRemoval);
      const averages = await draft.encode(corpus); // [N, dims], nothing removed yet
      const components = createMatrix(Math.min(settings.removeComponents, t.dims), t.dims);
      if (components.rows > 0 && total > 0) {
        const { vectors } = symmetricEigen(gramMatrix(averages), t.dims);
        components.data.set(vectors.subarray(0, components.rows * t.dims));
      }
      log.debug({ texts: corpus.length, words: counts.size, total }, 'glove-sif fitted');
      return new GloveSifEncoder(fp, t, settings.a, counts, total, components);
    },
    async restore(state: EncoderState): Promise<FittedTextEncoder> {
      const t = await getTable();
      const { a, total, words, counts } = state.params as { a?: unknown; total?: unknown; words?: unknown; counts?: unknown };
      const components = state.arrays.components;
      const ok =
        state.encoder === 'glove-sif' &&
        state.format === STATE_FORMAT &&
        typeof a === 'number' &&
        typeof total === 'number' &&
        Array.isArray(words) &&
        Array.isArray(counts) &&
        words.length === counts.length &&
        components !== undefined &&
        components.cols === t.dims;
      if (!ok) {
        throw new ArtifactError(
          `glove-sif: stored encoder state is not a format-${STATE_FORMAT} glove-sif state with a, total, words, counts and ` +
            `components [c, ${t.dims}] (got encoder ${state.encoder}, format ${state.format})`,
        );
      }
      const byRow = new Map<number, number>();
      (words as string[]).forEach((w, i) => {
        const row = t.index.get(w);
        if (row === undefined) throw new ArtifactError(`glove-sif: stored word ${JSON.stringify(w)} is not in the GloVe vocabulary`);
        byRow.set(row, (counts as number[])[i] as number);
      });
      return new GloveSifEncoder(fp, t, a as number, byRow, total as number, components);
    },
    async dispose(): Promise<void> {
      table = undefined;
    },
  };
}
