export { decodeEvents, type DecodeOptions } from './decodeEvents';
export { skipApplied } from './skipApplied';
export { dedupeEvents, type DedupeOptions } from './dedupeEvents';
export { rollingHistory, type HistoryState, type RollingHistoryOptions } from './rollingHistory';
export { sessionize, type SessionMark, type SessionState } from './sessionize';
export { microBatch, type MicroBatchOptions } from './microBatch';
