import { ArtifactStore } from '../infra/artifacts';
import { createKafka } from '../infra/kafka';
import { AnnouncingRegistry, openModelRegistry, storeCheckpoints, type ModelRegistry } from '../infra/registry';
import type { AppConfig } from './config';

/**
 * The configured model registry (`modelRegistry.url`), publishing checkpoints of the configured
 * artifact store; with `modelRegistry.announce`, each publication is also announced on the
 * model-published topic (`ingest.topics.models`).
 */
export function openRegistry(config: AppConfig): ModelRegistry {
  const registry = openModelRegistry(config.modelRegistry.url, storeCheckpoints(new ArtifactStore(config.artifacts.dir)));
  return config.modelRegistry.announce ? new AnnouncingRegistry(registry, createKafka(config.kafka, 'models'), config.ingest.topics.models) : registry;
}
