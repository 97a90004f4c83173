import { ConfigError, ValidationError } from '../errors';
import { npyFile, type ArtifactFileDraft } from '../infra/artifacts';
import { initTf } from '../infra/tf';
import { createLogger } from '../logging';
import type { Random } from '../random';
import { nearestCentroidsExact } from './assign';
import { checkClusterable, parseQuantizerSettings, type KMeansSettings, type QuantizerSettings, type QuantizerSettingsInput } from './config';
import { fitKMeans } from './kmeans';
import { checkMatrix, sliceCols, type Matrix } from '../infra/matrix';
import { checkCodes, encodeInChunks, type Quantizer, type TrainedQuantizer } from './quantizer';

/**
 * Product quantization (Jégou et al. 2011): the vector is cut into `levels` equal sub-vectors and
 * each sub-vector is coded by its own k-means codebook. Squared L2 throughout, as faiss's
 * IndexPQ trains and encodes (its METRIC_INNER_PRODUCT only changes search).
 */

const log = createLogger('quantizer.pq');

export class ProductQuantizer implements Quantizer {
  readonly kind = 'pq' as const;
  /** Width of one sub-vector: `dims / levels`. */
  readonly subDims: number;

  /** `codebooks` is `[levels, codesPerLevel, dims / levels]`. */
  constructor(
    readonly dims: number,
    readonly levels: number,
    readonly codesPerLevel: number,
    readonly codebooks: Float32Array,
  ) {
    checkPqShape(dims, levels);
    this.subDims = dims / levels;
    const expected = levels * codesPerLevel * this.subDims;
    if (codebooks.length !== expected) {
      throw new ValidationError(
        `ProductQuantizer: codebooks has ${codebooks.length} values, expected levels * codesPerLevel * subDims = ` +
          `${levels} * ${codesPerLevel} * ${this.subDims} = ${expected}`,
      );
    }
  }

  /** Centroids of book `m`: `[codesPerLevel, subDims]` (a view, not a copy). */
  book(m: number): Matrix {
    const size = this.codesPerLevel * this.subDims;
    return { data: this.codebooks.subarray(m * size, (m + 1) * size), rows: this.codesPerLevel, cols: this.subDims };
  }

  encode(x: Matrix): Uint16Array {
    checkMatrix(x, 'pq encode input', this.dims);
    const L = this.levels;
    return encodeInChunks(x, L, (chunk) => {
      const out = new Uint16Array(chunk.rows * L);
      for (let m = 0; m < L; m++) {
        const { codes } = nearestCentroidsExact(sliceCols(chunk, m * this.subDims, (m + 1) * this.subDims), this.book(m));
        for (let r = 0; r < chunk.rows; r++) out[r * L + m] = codes[r] as number;
      }
      return out;
    });
  }

  decode(codes: Uint16Array, rows: number): Matrix {
    checkCodes(codes, rows, this.levels, this.codesPerLevel);
    const { levels: L, subDims: s, dims } = this;
    const out = new Float32Array(rows * dims);
    for (let r = 0; r < rows; r++) {
      for (let m = 0; m < L; m++) {
        const from = (m * this.codesPerLevel + (codes[r * L + m] as number)) * s;
        out.set(this.codebooks.subarray(from, from + s), r * dims + m * s);
      }
    }
    return { data: out, rows, cols: dims };
  }

  toArtifactFiles(): ArtifactFileDraft[] {
    return [
      npyFile('codebooks.npy', this.codebooks, [this.levels, this.codesPerLevel, this.subDims], 'PQ centroids [book, code, sub-dimension]'),
    ];
  }
}

/** Checks that `dims` splits into `levels` equal sub-vectors. */
export function checkPqShape(dims: number, levels: number): void {
  if (!Number.isInteger(dims) || dims < 1) throw new ValidationError(`pq: dims must be a positive integer, received ${dims}`);
  if (dims % levels !== 0) {
    throw new ValidationError(
      `pq: the input dims must be divisible by levels (books) to cut equal sub-vectors; received dims = ${dims}, levels = ${levels}`,
      { context: { field: 'levels' } },
    );
  }
}

/** Parses settings for a method-specific trainer, refusing a different `method`. */
export function settingsFor(method: QuantizerSettings['method'], settings: QuantizerSettingsInput): QuantizerSettings {
  if (settings.method !== undefined && settings.method !== method) {
    throw new ConfigError(`settings.method is ${JSON.stringify(settings.method)} but this trainer fits ${JSON.stringify(method)}`, {
      context: { field: 'method' },
    });
  }
  return parseQuantizerSettings({ ...settings, method });
}

/**
 * What every trainer does first: parses `settings` for `method` ({@link settingsFor}) and checks
 * the training matrix `x` `[n, dims]` against them: well formed and finite, `dims` split into
 * equal books (pq, opq), at least `codesPerLevel` rows.
 */
export function trainingSettings(method: QuantizerSettings['method'], x: Matrix, settings: QuantizerSettingsInput): QuantizerSettings {
  const s = settingsFor(method, settings);
  checkMatrix(x, `${method} training matrix`);
  if (method === 'pq' || method === 'opq') checkPqShape(x.cols, s.levels);
  checkClusterable(x.rows, s.codesPerLevel, `${method}: codesPerLevel`);
  return s;
}

/**
 * Fits the `levels` sub-vector codebooks of `x` `[n, dims]`: codebooks
 * `[levels, codesPerLevel, subDims]` and the k-means assignment of every row `[n, levels]`
 * (consistent with the returned codebooks). With `init`, each book's k-means starts from the
 * given codebooks (OPQ's warm start).
 */
export function fitPqCodebooks(
  x: Matrix,
  levels: number,
  codesPerLevel: number,
  kmeansSettings: KMeansSettings,
  rng: Random,
  init?: Float32Array,
): { codebooks: Float32Array; codes: Uint16Array } {
  const s = x.cols / levels;
  const codebooks = new Float32Array(levels * codesPerLevel * s);
  const codes = new Uint16Array(x.rows * levels);
  for (let m = 0; m < levels; m++) {
    const bookRng = rng.fork();
    const sub = sliceCols(x, m * s, (m + 1) * s); // [n, s]
    const initialCentroids = init
      ? { data: init.subarray(m * codesPerLevel * s, (m + 1) * codesPerLevel * s), rows: codesPerLevel, cols: s }
      : undefined;
    const result = fitKMeans(sub, codesPerLevel, kmeansSettings, bookRng, initialCentroids ? { initialCentroids } : {});
    codebooks.set(result.centroids.data, m * codesPerLevel * s);
    for (let r = 0; r < x.rows; r++) codes[r * levels + m] = result.assignments[r] as number;
  }
  return { codebooks, codes };
}

/**
 * Trains a product quantizer on `x` `[n, dims]` (`dims` divisible by `levels`). Returns the
 * quantizer and the codes of the training rows (= `quantizer.encode(x)`).
 */
export async function trainPq(x: Matrix, settings: QuantizerSettingsInput, rng: Random): Promise<TrainedQuantizer> {
  await initTf();
  const s = trainingSettings('pq', x, settings);
  const started = Date.now();
  const { codebooks } = fitPqCodebooks(x, s.levels, s.codesPerLevel, s.kmeans, rng);
  const quantizer = new ProductQuantizer(x.cols, s.levels, s.codesPerLevel, codebooks);
  const codes = quantizer.encode(x);
  log.info({ rows: x.rows, dims: x.cols, levels: s.levels, codesPerLevel: s.codesPerLevel, ms: Date.now() - started }, 'pq trained');
  return { quantizer, codes };
}
