export { BaseHistoryStore, MemoryHistoryStore, type HistoryStore, type RestoreStats } from './store';
export { ChangelogHistoryStore, ensureChangelogTopic, followChangelog, readTopicToEnd, decodeChangelogRecord, type ChangelogOptions } from './changelog';
