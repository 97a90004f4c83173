import { ValidationError } from '../errors';
import { npyFile, type ArtifactFileDraft } from '../infra/artifacts';
import { initTf } from '../infra/tf';
import { createLogger } from '../logging';
import type { Random } from '../random';
import { nearestCentroidsExact } from './assign';
import type { QuantizerSettings, QuantizerSettingsInput } from './config';
import { fitKMeans } from './kmeans';
import { checkMatrix, type Matrix } from '../infra/matrix';
import { trainingSettings } from './pq';
import { checkCodes, encodeInChunks, type Quantizer, type TrainedQuantizer } from './quantizer';

/**
 * Residual quantization: level 1 codes the vector with a k-means codebook, every next level codes
 * what the previous levels left (the residual). Greedy nearest-centroid encoding, level by level
 * (faiss's ResidualQuantizer with beam size 1). `rqkmeans` is the same model whose codebooks are
 * fitted with balanced (size-constrained) k-means so that codes are used evenly.
 */

const log = createLogger('quantizer.rq');

export class ResidualQuantizer implements Quantizer {
  /** `codebooks` is `[levels, codesPerLevel, dims]`. */
  constructor(
    readonly kind: 'rq' | 'rqkmeans',
    readonly dims: number,
    readonly levels: number,
    readonly codesPerLevel: number,
    readonly codebooks: Float32Array,
  ) {
    const expected = levels * codesPerLevel * dims;
    if (codebooks.length !== expected) {
      throw new ValidationError(
        `ResidualQuantizer: codebooks has ${codebooks.length} values, expected levels * codesPerLevel * dims = ` +
          `${levels} * ${codesPerLevel} * ${dims} = ${expected}`,
      );
    }
  }

  /** Centroids of level `l`: `[codesPerLevel, dims]` (a view). */
  level(l: number): Matrix {
    const size = this.codesPerLevel * this.dims;
    return { data: this.codebooks.subarray(l * size, (l + 1) * size), rows: this.codesPerLevel, cols: this.dims };
  }

  /** Greedy nearest-centroid codes, level by level (also for rqkmeans: see trainRqKMeans). */
  encode(x: Matrix): Uint16Array {
    checkMatrix(x, `${this.kind} encode input`, this.dims);
    const L = this.levels;
    return encodeInChunks(x, L, (chunk) => {
      const out = new Uint16Array(chunk.rows * L);
      const residual = { data: chunk.data.slice(), rows: chunk.rows, cols: chunk.cols }; // [m, d]
      for (let l = 0; l < L; l++) {
        const centroids = this.level(l);
        const { codes } = nearestCentroidsExact(residual, centroids);
        for (let r = 0; r < chunk.rows; r++) out[r * L + l] = codes[r] as number;
        subtractCentroids(residual, centroids, codes);
      }
      return out;
    });
  }

  decode(codes: Uint16Array, rows: number): Matrix {
    checkCodes(codes, rows, this.levels, this.codesPerLevel);
    const { levels: L, dims: d } = this;
    const out = new Float32Array(rows * d);
    for (let r = 0; r < rows; r++) {
      for (let l = 0; l < L; l++) {
        const from = (l * this.codesPerLevel + (codes[r * L + l] as number)) * d;
        for (let i = 0; i < d; i++) out[r * d + i] = (out[r * d + i] as number) + (this.codebooks[from + i] as number);
      }
    }
    return { data: out, rows, cols: d };
  }

  toArtifactFiles(): ArtifactFileDraft[] {
    return [npyFile('codebooks.npy', this.codebooks, [this.levels, this.codesPerLevel, this.dims], 'RQ centroids [level, code, dimension]')];
  }
}

/** `residual[r] -= centroids[codes[r]]` in place. */
function subtractCentroids(residual: Matrix, centroids: Matrix, codes: Int32Array): void {
  const d = residual.cols;
  for (let r = 0; r < residual.rows; r++) {
    const co = (codes[r] as number) * d;
    const ro = r * d;
    for (let i = 0; i < d; i++) residual.data[ro + i] = (residual.data[ro + i] as number) - (centroids.data[co + i] as number);
  }
}

/** Fits the levels one after another on the residuals; returns codebooks and the training codes. */
function fitResidualLevels(
  x: Matrix,
  s: QuantizerSettings,
  rng: Random,
  balanced: boolean,
): { codebooks: Float32Array; codes: Uint16Array } {
  const { levels: L, codesPerLevel: K } = s;
  const d = x.cols;
  const codebooks = new Float32Array(L * K * d);
  const codes = new Uint16Array(x.rows * L);
  const residual = { data: x.data.slice(), rows: x.rows, cols: d }; // [n, d]
  for (let l = 0; l < L; l++) {
    const result = fitKMeans(residual, K, s.kmeans, rng.fork(), balanced ? { balanced: s.balance } : {});
    codebooks.set(result.centroids.data, l * K * d);
    for (let r = 0; r < x.rows; r++) codes[r * L + l] = result.assignments[r] as number;
    subtractCentroids(residual, result.centroids, result.assignments);
    log.debug({ level: l + 1, inertia: result.inertia, iterations: result.iterations, balanced }, 'rq level fitted');
  }
  return { codebooks, codes };
}

/**
 * Trains plain residual quantization on `x` `[n, dims]`: k-means on the residuals, level by
 * level. Returns the quantizer and the codes of the training rows (= `quantizer.encode(x)`).
 */
export async function trainRq(x: Matrix, settings: QuantizerSettingsInput, rng: Random): Promise<TrainedQuantizer> {
  await initTf();
  const s = trainingSettings('rq', x, settings);
  const started = Date.now();
  const { codebooks } = fitResidualLevels(x, s, rng, false);
  const quantizer = new ResidualQuantizer('rq', x.cols, s.levels, s.codesPerLevel, codebooks);
  const codes = quantizer.encode(x);
  log.info({ rows: x.rows, dims: x.cols, levels: s.levels, codesPerLevel: s.codesPerLevel, ms: Date.now() - started }, 'rq trained');
  return { quantizer, codes };
}

/**
 * Trains RQ-KMeans with balanced assignment on `x` `[n, dims]`: at every level, k-means whose
 * assignment step gives each code at most `ceil(n / codesPerLevel * (1 + balance.capacitySlack))`
 * rows (see balanced.ts), on the residuals of the balanced assignment of the levels above.
 *
 * The returned `codes` are those balanced training assignments: they are what the semantic-ID
 * table stores for the training items, and they use the codes evenly. `quantizer.encode` (used
 * for items added between rebuilds) is plain nearest-centroid, because balancing needs the whole
 * population; a training item re-encoded with it may therefore get a different, nearer code than
 * its table entry. A rebuild recomputes the balanced codes for everyone.
 */
export async function trainRqKMeans(x: Matrix, settings: QuantizerSettingsInput, rng: Random): Promise<TrainedQuantizer> {
  await initTf();
  const s = trainingSettings('rqkmeans', x, settings);
  const started = Date.now();
  const { codebooks, codes } = fitResidualLevels(x, s, rng, true);
  const quantizer = new ResidualQuantizer('rqkmeans', x.cols, s.levels, s.codesPerLevel, codebooks);
  log.info(
    { rows: x.rows, dims: x.cols, levels: s.levels, codesPerLevel: s.codesPerLevel, ms: Date.now() - started },
    'rqkmeans trained',
  );
  return { quantizer, codes };
}
