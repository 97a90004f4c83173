export { createKafka, parseKafkaUrl, sendChunked, type KafkaUrl } from './client';
export { KafkaDeadLetterPublisher, deadLetterMessage, DLQ_HEADERS } from './deadLetters';
export { InlineRecordWriter, WorkerProducer, type RecordWriter, type SendOptions, type WorkerRecord } from './workerProducer';
