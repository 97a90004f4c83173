export * from './types';
export * from './operators';
export { BatchPipeline } from './batchPipeline';
export { IngestProcessor, type CommitOffset, type DeadLetterSink, type IngestProcessorOptions, type IngestTotals } from './processor';
export { KafkaSource, InProcessSource, type EventSource, type BatchHandler, type Assignment } from './sources';
export { startIngest, type IngestRuntime, type RunIngestOptions } from './run';
export { replayToKafka, replayBatches, parseSpeed, partitionOf, type ReplaySpeed, type ReplayProgress } from './replay';
export { IngestMetrics } from './metrics';
export * from './datasets';
