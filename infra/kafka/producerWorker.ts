/**
 * Worker-thread side of {@link WorkerProducer}: owns one kafkajs producer and sends what the
 * parent thread posts. kafkajs encodes record batches (varints, CRC32C, optional gzip) in
 * JavaScript; running that here keeps it off the thread that consumes and validates events.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { KafkaConfig } from '../../schemas/config';
import { createKafka } from './client';
import { InlineRecordWriter, type ProducerWorkerReply, type ProducerWorkerRequest } from './workerProducer';

interface WorkerData {
  readonly config: KafkaConfig;
  readonly clientIdSuffix: string;
}

const port = parentPort;
if (!port) throw new Error('producerWorker.ts runs as a worker thread (see WorkerProducer)');

const { config, clientIdSuffix } = workerData as WorkerData;
const writer = new InlineRecordWriter(createKafka(config, clientIdSuffix));

function reply(message: ProducerWorkerReply): void {
  port?.postMessage(message);
}

port.on('message', (request: ProducerWorkerRequest) => {
  if (request.type === 'close') {
    writer
      .close()
      .catch(() => undefined)
      .finally(() => {
        reply({ type: 'closed' });
        port.close();
      });
    return;
  }
  const { id, topic, messages, options } = request;
  writer.send(topic, messages, options).then(
    () => reply({ type: 'sent', id }),
    (error: unknown) => {
      const e = error as { message?: string; name?: string; retriable?: boolean };
      // A failed producer may hold a broken connection: start over on the next send.
      writer.close().catch(() => undefined);
      reply({ type: 'failed', id, error: { name: e.name ?? 'Error', message: e.message ?? String(error), retriable: e.retriable !== false } });
    },
  );
});
