import { z } from 'zod';
import { ConfigError, ValidationError, describeValue } from '../errors';

/**
 * Settings of the quantizer stage: one strict schema, a default and a description for every key.
 * Parse untrusted input with {@link parseQuantizerSettings}, which turns schema failures into a
 * {@link ConfigError} naming the key, what was expected and what was received.
 */

/** Largest codebook size: codes are stored as uint16. */
export const MAX_CODES_PER_LEVEL = 65536;

function isPowerOfTwo(v: number): boolean {
  return Number.isInteger(v) && v >= 1 && (v & (v - 1)) === 0;
}

export const KMeansSettings = z
  .strictObject({
    iterations: z
      .number()
      .int()
      .min(1)
      .max(1000)
      .default(25)
      .describe('Most Lloyd iterations (centroid updates) per k-means run; faiss uses 25.'),
    tolerance: z
      .number()
      .min(0)
      .default(1e-4)
      .describe('Stop early when one iteration lowers the squared error by less than this fraction; 0 always runs every iteration.'),
    maxPointsPerCentroid: z
      .number()
      .int()
      .min(1)
      .default(256)
      .describe('Train on a random sample of at most k * this many rows (as faiss does); all rows are encoded afterwards.'),
    initSamplePerCentroid: z
      .number()
      .int()
      .min(1)
      .default(16)
      .describe('k-means++ seeding draws its k seeds from a random sample of at most k * this many training rows.'),
  })
  .describe('k-means: k-means++ seeding, Lloyd iterations, empty clusters refilled with the worst-fit rows.');
export type KMeansSettings = z.infer<typeof KMeansSettings>;

export const QuantizerMethod = z
  .enum(['pq', 'opq', 'rq', 'rqkmeans'])
  .describe(
    'pq: product quantization (one codebook per sub-vector); opq: PQ after a learned rotation; ' +
      'rq: residual quantization (k-means on residuals, level by level); rqkmeans: RQ with balanced ' +
      '(size-constrained) assignment so that codes are used evenly.',
  );
export type QuantizerMethod = z.infer<typeof QuantizerMethod>;

export const QuantizerSettings = z
  .strictObject({
    method: QuantizerMethod.default('rqkmeans'),
    levels: z
      .number()
      .int()
      .min(1)
      .max(64)
      .default(4)
      .describe('Digits per semantic ID: PQ/OPQ sub-vector codebooks, or RQ levels.'),
    codesPerLevel: z
      .number()
      .int()
      .refine((v) => isPowerOfTwo(v) && v >= 2 && v <= MAX_CODES_PER_LEVEL, {
        message: `codesPerLevel (codes per book) must be a power of two between 2 and ${MAX_CODES_PER_LEVEL}`,
      })
      .default(256)
      .describe('Codes per codebook (per level); a power of two, at most 65536 (codes are uint16).'),
    kmeans: KMeansSettings.prefault({}).describe('k-means used to fit every codebook.'),
    opq: z
      .strictObject({
        rotationIterations: z
          .number()
          .int()
          .min(1)
          .default(8)
          .describe('Alternations between PQ refinement and the rotation update (orthogonal Procrustes).'),
        pqIterationsPerStep: z
          .number()
          .int()
          .min(1)
          .default(4)
          .describe('Lloyd iterations per codebook between two rotation updates (warm-started).'),
      })
      .prefault({})
      .describe('OPQ only.'),
    balance: z
      .strictObject({
        capacitySlack: z
          .number()
          .min(0)
          .max(10)
          .default(0)
          .describe('rqkmeans only: a code may take at most ceil(rows / codes * (1 + slack)) training rows.'),
      })
      .prefault({})
      .describe('rqkmeans only: balanced assignment.'),
  })
  .describe('How to quantize an item embedding matrix into semantic IDs.');
export type QuantizerSettings = z.infer<typeof QuantizerSettings>;
/** Settings as written by a user: every key optional. */
export type QuantizerSettingsInput = z.input<typeof QuantizerSettings>;

/** Turns the first zod issue into a ConfigError naming the key, the expectation and the value. */
export function configErrorFrom(error: z.ZodError, what: string): ConfigError {
  const issue = error.issues[0];
  const key = issue && issue.path.length > 0 ? issue.path.join('.') : '(root)';
  const received = issue && 'input' in issue ? `; received ${describeValue(issue.input)}` : '';
  const unknown = issue?.code === 'unrecognized_keys' ? ` (unknown keys: ${issue.keys.join(', ')})` : '';
  return new ConfigError(`${what}: invalid ${key}: ${issue?.message ?? 'invalid'}${unknown}${received}`, {
    context: { field: key },
  });
}

/** Parses quantizer settings (defaults filled in) or throws a ConfigError. */
export function parseQuantizerSettings(input: unknown = {}): QuantizerSettings {
  const parsed = QuantizerSettings.safeParse(input, { reportInput: true });
  if (!parsed.success) throw configErrorFrom(parsed.error, 'quantizer settings');
  return parsed.data;
}

/** Checks a codebook size outside the schema (same rule, same message). */
export function checkCodesPerLevel(value: number): void {
  if (!(isPowerOfTwo(value) && value >= 2 && value <= MAX_CODES_PER_LEVEL)) {
    throw new ConfigError(
      `codesPerLevel (codes per book) must be a power of two between 2 and ${MAX_CODES_PER_LEVEL}; received ${describeValue(value)}`,
      { context: { field: 'codesPerLevel' } },
    );
  }
}

/**
 * Checks that `k` centroids can be fitted on `rows` rows; `what` names the argument that set k,
 * e.g. `pq: codesPerLevel`.
 */
export function checkClusterable(rows: number, k: number, what: string): void {
  if (rows < k) {
    throw new ValidationError(
      `${what} = ${k} needs at least ${k} training rows (one per centroid); received a matrix with ${rows} rows`,
      { context: { field: 'rows' } },
    );
  }
}
