import { ValidationError } from '../errors';
import type { ArtifactFileDraft } from '../infra/artifacts';
import type { Matrix } from '../infra/matrix';

/** The quantization methods; the same names are used in settings and in artifacts. */
export type QuantizerKind = 'pq' | 'opq' | 'rq' | 'rqkmeans';

/**
 * A trained quantizer: maps `dims`-dimensional vectors to `levels` code digits, each in
 * `[0, codesPerLevel)`, and back.
 *
 * Obtain one from a `train*` function or from a `codebooks` artifact (`loadQuantizer`); both
 * initialise the TF.js backend that `encode` uses.
 */
export interface Quantizer {
  readonly kind: QuantizerKind;
  /** Width of the vectors it encodes. */
  readonly dims: number;
  /** Code digits per vector (PQ/OPQ books, RQ levels). */
  readonly levels: number;
  /** Codes per codebook, a power of two. */
  readonly codesPerLevel: number;
  /**
   * Nearest-centroid codes of every row, `[rows, levels]` row-major. A row's code depends only
   * on that row (not on the other rows encoded with it), so coding new items one by one gives
   * what a full encode gives them.
   */
  encode(x: Matrix): Uint16Array;
  /** Reconstruction of `rows` code vectors `[rows, levels]`: `[rows, dims]`. */
  decode(codes: Uint16Array, rows: number): Matrix;
  /** Data files of a `codebooks` artifact (see artifacts.ts for the layout). */
  toArtifactFiles(): ArtifactFileDraft[];
}

/** What a trainer returns: the quantizer and the codes it gives the training rows. */
export interface TrainedQuantizer {
  readonly quantizer: Quantizer;
  /**
   * Codes of the training rows `[rows, levels]`. For pq, opq and rq these equal
   * `quantizer.encode(x)`; for rqkmeans they are the balanced assignment (see trainRqKMeans).
   */
  readonly codes: Uint16Array;
}

/** Rows per chunk when encoding, to bound memory on large catalogs. */
export const ENCODE_CHUNK_ROWS = 16384;

/** Runs `encodeChunk` over row chunks of `x` and concatenates the `[rows, levels]` codes. */
export function encodeInChunks(x: Matrix, levels: number, encodeChunk: (chunk: Matrix) => Uint16Array): Uint16Array {
  const out = new Uint16Array(x.rows * levels);
  for (let start = 0; start < x.rows; start += ENCODE_CHUNK_ROWS) {
    const end = Math.min(x.rows, start + ENCODE_CHUNK_ROWS);
    const chunk = { data: x.data.subarray(start * x.cols, end * x.cols), rows: end - start, cols: x.cols };
    out.set(encodeChunk(chunk), start * levels);
  }
  return out;
}

/** Checks a `[rows, levels]` code array before decoding. */
export function checkCodes(codes: Uint16Array, rows: number, levels: number, codesPerLevel: number): void {
  if (!(codes instanceof Uint16Array)) throw new ValidationError('decode: codes must be a Uint16Array [rows, levels]');
  if (codes.length !== rows * levels) {
    throw new ValidationError(`decode: codes has ${codes.length} entries, expected rows * levels = ${rows} * ${levels}`);
  }
  for (let i = 0; i < codes.length; i++) {
    if ((codes[i] as number) >= codesPerLevel) {
      throw new ValidationError(
        `decode: code ${codes[i]} at row ${Math.floor(i / levels)}, level ${i % levels} is out of range [0, ${codesPerLevel})`,
      );
    }
  }
}
