import type { Migration } from '../migrations';

/**
 * Evaluation rows of a ranking fused with the text prior (trainer/textPrior.ts) sit beside the
 * model-alone rows of the same checkpoint: the prior's weight and query length join the sort key
 * (0 and 0 = the model alone), so neither replaces the other.
 */
export const migration003: Migration = {
  version: 3,
  name: 'evaluation_results: text prior weight and query length',
  statements: [
    // One statement: ClickHouse only lets a sort key take columns added by the same ALTER (and
    // without a DEFAULT expression; numeric columns start at 0).
    `ALTER TABLE {db}.evaluation_results
      ADD COLUMN IF NOT EXISTS text_prior_weight Float64,
      ADD COLUMN IF NOT EXISTS text_prior_last UInt16,
      MODIFY ORDER BY (run_id, split, model_version, metric, k, text_prior_weight, text_prior_last)`,
  ],
};
