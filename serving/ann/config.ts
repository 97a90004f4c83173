import { z } from 'zod';
import { ConfigError, describeValue } from '../../errors';

/**
 * Settings of serving's candidate index: one strict schema, a default and a description for every
 * key. The measurements behind the defaults are in serving/ann/README.md and `npm run bench -- ann`.
 */

export const HnswSettings = z
  .strictObject({
    m: z
      .number()
      .int()
      .min(2)
      .max(128)
      .default(32)
      .describe('Links per node in the HNSW graph (M): more links give better recall at a given ef, a larger index and a slower build.'),
    efConstruction: z
      .number()
      .int()
      .min(1)
      .max(4096)
      .default(200)
      .describe('Candidate list size while inserting (efConstruction): larger builds a better graph, more slowly; search speed is unaffected.'),
    ef: z
      .number()
      .int()
      .min(1)
      .max(4096)
      .default(256)
      .describe('Default candidate list size while searching (ef), at least k: larger gives better recall and slower queries. A search may override it.'),
    seed: z
      .number()
      .int()
      .min(0)
      .max(2 ** 31 - 1)
      .default(100)
      .describe('Seed of the random level assignment, so that the same items inserted in the same order build the same graph.'),
  })
  .describe('HNSW graph (hnswlib, inner product).');
export type HnswSettings = z.infer<typeof HnswSettings>;

export const AnnConfig = z
  .strictObject({
    index: z
      .enum(['auto', 'exact', 'hnsw'])
      .default('auto')
      .describe('auto: exact search when the catalog has fewer than exactBelow items, HNSW from there on; exact or hnsw force one.'),
    exactBelow: z
      .number()
      .int()
      .min(0)
      .default(20_000)
      .describe(
        'With index auto, catalogs smaller than this are searched exactly (every item scored: no build, no recall loss); larger ones get an HNSW index. The choice is made when the index is built; items added later do not switch it.',
      ),
    hnsw: HnswSettings.prefault({}).describe('HNSW settings, used when the index is HNSW.'),
  })
  .describe('Candidate generation: the index serving ranks items with.');
export type AnnConfig = z.infer<typeof AnnConfig>;
export type AnnConfigInput = z.input<typeof AnnConfig>;

/** Parses ANN settings (defaults filled in) or throws a ConfigError naming the key, what was expected and what was received. */
export function parseAnnConfig(input: unknown = {}): AnnConfig {
  const parsed = AnnConfig.safeParse(input, { reportInput: true });
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const key = issue && issue.path.length > 0 ? issue.path.join('.') : '(root)';
  const received = issue && 'input' in issue && issue.input !== undefined ? `; received ${describeValue(issue.input)}` : '';
  const unknown = issue?.code === 'unrecognized_keys' ? ` (unknown keys: ${issue.keys.join(', ')})` : '';
  throw new ConfigError(`ann settings: invalid ${key}: ${issue?.message ?? 'invalid'}${unknown}${received}`, { context: { field: key } });
}
