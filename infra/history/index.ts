export { BaseHistoryStore, MemoryHistoryStore, type HistoryStore, type PreparedHistories, type RestoreStats } from './store';
export { ChangelogHistoryStore, ensureChangelogTopic, ensureTopics, followChangelog, isStale, readTopicToEnd, topicEnds, decodeChangelogRecord, type ChangelogOptions, type FollowOptions } from './changelog';
