export { BaseHistoryStore, MemoryHistoryStore, type HistoryStore, type PreparedHistories, type RestoreStats } from './store';
export { ChangelogHistoryStore, ensureChangelogTopic, ensureTopics, followChangelog, isStale, readTopicToEnd, decodeChangelogRecord, type ChangelogOptions } from './changelog';
