import { ArtifactStore } from '../infra/artifacts';
import { openModelRegistry, storeCheckpoints, type ModelRegistry } from '../infra/registry';
import type { AppConfig } from './config';

/** The configured model registry (`modelRegistry.url`), publishing checkpoints of the configured artifact store. */
export function openRegistry(config: AppConfig): ModelRegistry {
  return openModelRegistry(config.modelRegistry.url, storeCheckpoints(new ArtifactStore(config.artifacts.dir)));
}
