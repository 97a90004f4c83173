/**
 * Worker-thread side of {@link WorkerProducer}: owns one kafkajs producer and sends what the
 * parent thread posts. kafkajs encodes record batches (varints, CRC32C, optional gzip) in
 * JavaScript; running that here keeps it off the thread that consumes and validates events.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { Producer } from 'kafkajs';
import type { KafkaConfig } from '../../schemas/config';
import { createKafka, sendChunked } from './client';
import type { ProducerWorkerReply, ProducerWorkerRequest } from './workerProducer';

interface WorkerData {
  readonly config: KafkaConfig;
  readonly clientIdSuffix: string;
}

const port = parentPort;
if (!port) throw new Error('producerWorker.ts runs as a worker thread (see WorkerProducer)');

const { config, clientIdSuffix } = workerData as WorkerData;
const kafka = createKafka(config, clientIdSuffix);
let producer: Producer | undefined;

async function connected(): Promise<Producer> {
  if (!producer) {
    const p = kafka.producer({ allowAutoTopicCreation: true });
    await p.connect();
    producer = p;
  }
  return producer;
}

function reply(message: ProducerWorkerReply): void {
  port?.postMessage(message);
}

port.on('message', (request: ProducerWorkerRequest) => {
  if (request.type === 'close') {
    const p = producer;
    producer = undefined;
    (p ? p.disconnect() : Promise.resolve())
      .catch(() => undefined)
      .finally(() => {
        reply({ type: 'closed' });
        port.close();
      });
    return;
  }
  const { id, topic, messages, compression, maxRequestBytes } = request;
  connected()
    .then((p) => sendChunked(p, topic, messages, { ...(compression !== undefined ? { compression } : {}), ...(maxRequestBytes ? { maxRequestBytes } : {}) }))
    .then(
      () => reply({ type: 'sent', id }),
      (error: unknown) => {
        const e = error as { message?: string; name?: string; retriable?: boolean };
        // A failed producer may hold a broken connection: start over on the next send.
        const p = producer;
        producer = undefined;
        p?.disconnect().catch(() => undefined);
        reply({ type: 'failed', id, error: { name: e.name ?? 'Error', message: e.message ?? String(error), retriable: e.retriable !== false } });
      },
    );
});
