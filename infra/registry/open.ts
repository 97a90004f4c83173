import path from 'node:path';
import { ConfigError } from '../../errors';
import type { ArtifactStore } from '../artifacts';
import { DirectoryModelRegistry, type DirectoryRegistryOptions } from './directory';
import { MemoryModelRegistry } from './memory';
import type { CheckpointLookup, ModelRegistry } from './modelRegistry';

/**
 * The checkpoints of an artifact store, as a registry sees them: the artifact must exist, be a
 * checkpoint and have every file intact (size and sha256) before it can go live.
 */
export function storeCheckpoints(store: ArtifactStore): CheckpointLookup {
  return async (checkpointId) => {
    if (!/^checkpoint-[0-9a-f]{16}$/.test(checkpointId)) throw new Error(`expected a checkpoint id (checkpoint-<16 hex>), got ${JSON.stringify(checkpointId)}`);
    const artifact = await store.open(checkpointId);
    if (artifact.manifest.kind !== 'checkpoint') throw new Error(`${checkpointId} is a ${artifact.manifest.kind} artifact`);
    await artifact.verify();
    const type = artifact.manifest.settings.modelType;
    if (type !== 'ccfrec' && type !== 'sasrec') throw new Error(`${checkpointId} names no model type (settings.modelType ${JSON.stringify(type)})`);
    return { modelType: type };
  };
}

/** A model registry from its URL: `dir:<directory>` or `memory:`. */
export function openModelRegistry(url: string, lookup: CheckpointLookup, options: DirectoryRegistryOptions = {}): ModelRegistry {
  if (url === 'memory:') return new MemoryModelRegistry(lookup);
  if (url.startsWith('dir:') && url.length > 4) return new DirectoryModelRegistry(path.resolve(url.slice(4)), lookup, options);
  throw new ConfigError(`model registry URL: expected dir:<directory> or memory:, got ${JSON.stringify(url)}`, { context: { field: 'modelRegistry.url' } });
}
