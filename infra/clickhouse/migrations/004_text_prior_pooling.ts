import type { Migration } from '../migrations';

/**
 * The text prior's pooling (trainer/textPrior.ts: `max` or `mean` of a candidate's cosines to
 * the query items) joins the sort key, so rows fused with either pooling sit side by side. Rows
 * of the model alone have ''. Fused rows written before this migration have '' too: they used
 * the mean (the only pooling then).
 */
export const migration004: Migration = {
  version: 4,
  name: 'evaluation_results: text prior pooling',
  statements: [
    // As in migration 3: a sort key only takes columns added by the same ALTER, without a DEFAULT.
    `ALTER TABLE {db}.evaluation_results
      ADD COLUMN IF NOT EXISTS text_prior_pooling LowCardinality(String),
      MODIFY ORDER BY (run_id, split, model_version, metric, k, text_prior_weight, text_prior_last, text_prior_pooling)`,
  ],
};
