export { createKafka, parseKafkaUrl, sendChunked, type KafkaUrl } from './client';
export { startMockCluster, type MockCluster } from './mockCluster';
export { startLocalBroker, type LocalBroker } from './localBroker';
export { KafkaDeadLetterPublisher, deadLetterMessage, DLQ_HEADERS } from './deadLetters';
export { InlineRecordWriter, WorkerProducer, type RecordWriter, type SendOptions, type WorkerRecord } from './workerProducer';
