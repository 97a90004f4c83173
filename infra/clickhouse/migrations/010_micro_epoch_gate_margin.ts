import type { Migration } from '../migrations';

/**
 * `micro_epochs.gate_margin`: how far below the live model on `gate_metric` the fine-tuned one
 * could be and still pass (micro.gateMargin when the row was written), so that a row holds the
 * whole decision: `accepted` = `candidate_gate >= live_gate - gate_margin`. Rows written before
 * this column: 0.
 */
export const migration010: Migration = {
  version: 10,
  name: 'micro_epochs.gate_margin: the gate decision whole in each row',
  statements: [`ALTER TABLE {db}.micro_epochs ADD COLUMN IF NOT EXISTS gate_margin Float64 AFTER candidate_gate`],
};
