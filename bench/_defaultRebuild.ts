import path from 'node:path';
import { FeaturesConfig } from '../features';
import type { ArtifactStore } from '../infra/artifacts';
import type { LoadedDataset } from '../datasets';
import { QuantizerSettings } from '../quantizer';
import { rebuild } from '../quantizer/rebuild';
import { Random } from '../random';

/** A rebuild with the default encoder and quantizer (GloVe-SIF, PCA 64, RQ-KMeans 4 x 256) into `store`. */
export async function defaultRebuild(dataset: LoadedDataset, store: ArtifactStore, scratchDir: string): Promise<void> {
  await rebuild({
    events: dataset.items,
    store,
    registryFile: path.join(scratchDir, 'registry.json'),
    features: FeaturesConfig.parse({}),
    quantizers: [QuantizerSettings.parse({})],
    rng: new Random(7),
  });
}
