import { ConfigError } from '../../errors';
import type { Random } from '../../random';
import type { ModelConfig } from '../config';
import type { ItemSideInfo } from '../sideInfo';
import { CcfrecModel } from './ccfrec';
import type { SequentialRecommender } from './contract';
import { SasrecModel } from './sasrec';

export type { LossResult, SequentialRecommender } from './contract';
export { ITEM_TABLE_CHUNK, checkRows, hostItemTable } from './contract';
export { CcfrecModel } from './ccfrec';
export { SasrecModel } from './sasrec';

/** What a model is built from besides its settings. */
export interface ModelInputs {
  /** N: dense item ids 1..N. */
  readonly itemCount: number;
  /** Required by CCFRec (codes and text embeddings); SASRec ignores it. */
  readonly sideInfo?: ItemSideInfo;
}

/** Builds a freshly initialised model; every init value is drawn from `rng`. */
/** `rng`: where random inits are drawn from; null for a model whose weights are set right after (zeros, no draws). */
export function createModel(config: ModelConfig, inputs: ModelInputs, rng: Random | null): SequentialRecommender {
  switch (config.type) {
    case 'sasrec':
      return new SasrecModel(config, inputs.itemCount, rng);
    case 'ccfrec': {
      if (!inputs.sideInfo) throw new ConfigError('CCFRec needs side information (semantic IDs and text embeddings); none was given');
      if (inputs.sideInfo.itemCount !== inputs.itemCount) {
        throw new ConfigError(`CCFRec: side information covers ${inputs.sideInfo.itemCount} items, the data has ${inputs.itemCount}`);
      }
      return new CcfrecModel(config, inputs.sideInfo, rng);
    }
  }
}
