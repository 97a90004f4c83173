export {
  PublishEvaluation,
  PublishedModel,
  type CheckpointLookup,
  type ModelRegistry,
  type PublishRequest,
  type WatchOptions,
} from './modelRegistry';
export { DirectoryModelRegistry, type DirectoryRegistryOptions } from './directory';
export { MemoryModelRegistry } from './memory';
export { openModelRegistry, storeCheckpoints } from './open';
export { AnnouncingRegistry, ModelAnnouncement, followAnnouncements, type AnnouncementFollower } from './announce';
