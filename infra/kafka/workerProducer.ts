import path from 'node:path';
import type { Worker } from 'node:worker_threads';
import type { Kafka, Producer } from 'kafkajs';
import { KafkaError } from '../../errors';
import { createLogger } from '../../logging';
import type { KafkaConfig } from '../../schemas/config';
import { startWorker } from '../worker';
import { sendChunked } from './client';

const log = createLogger('infra.kafka.worker');

/** A record to write: strings only, so that it crosses threads cheaply. */
export interface WorkerRecord {
  readonly key: string;
  readonly value: string | null;
  readonly partition?: number;
}

export interface SendOptions {
  readonly compression?: number;
  readonly maxRequestBytes?: number;
}

/**
 * Writes records to Kafka and resolves once the broker acknowledged all of them (acks = all).
 * {@link InlineRecordWriter} encodes on the calling thread, {@link WorkerProducer} on its own.
 */
export interface RecordWriter {
  send(topic: string, messages: readonly WorkerRecord[], options?: SendOptions): Promise<void>;
  close(): Promise<void>;
}

/** A kafkajs producer on the calling thread, connected on the first send. */
export class InlineRecordWriter implements RecordWriter {
  private producer: Producer | undefined;

  constructor(private readonly kafka: Kafka) {}

  async send(topic: string, messages: readonly WorkerRecord[], options: SendOptions = {}): Promise<void> {
    if (messages.length === 0) return;
    if (!this.producer) {
      const producer = this.kafka.producer({ allowAutoTopicCreation: true });
      await producer.connect();
      this.producer = producer;
    }
    await sendChunked(this.producer, topic, messages, options);
  }

  /** Disconnects; a later send connects a new producer. */
  async close(): Promise<void> {
    const producer = this.producer;
    this.producer = undefined;
    await producer?.disconnect();
  }
}

export type ProducerWorkerRequest =
  | { readonly type: 'send'; readonly id: number; readonly topic: string; readonly messages: readonly WorkerRecord[]; readonly options: SendOptions }
  | { readonly type: 'close' };

export type ProducerWorkerReply =
  | { readonly type: 'sent'; readonly id: number }
  | { readonly type: 'failed'; readonly id: number; readonly error: { readonly name: string; readonly message: string; readonly retriable: boolean } }
  | { readonly type: 'closed' };

interface Pending {
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
  readonly topic: string;
  readonly count: number;
}

/**
 * A Kafka producer on its own worker thread. `send` posts the records (strings, copied once) and
 * resolves when the broker has acknowledged all of them (acks = all), so callers keep the same
 * durability contract as with an in-thread producer; only the encoding moves. The worker starts
 * on the first send; if it dies, pending sends fail with a retriable {@link KafkaError} and the
 * next send starts a new one.
 */
export class WorkerProducer implements RecordWriter {
  private worker: Worker | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly config: KafkaConfig,
    private readonly clientIdSuffix = 'worker',
  ) {}

  private start(): Worker {
    const worker = startWorker(path.join(__dirname, 'producerWorker'), { workerData: { config: this.config, clientIdSuffix: this.clientIdSuffix } });
    worker.on('message', (reply: ProducerWorkerReply) => {
      if (reply.type === 'closed') return;
      const p = this.pending.get(reply.id);
      if (!p) return;
      this.pending.delete(reply.id);
      if (this.pending.size === 0) worker.unref();
      if (reply.type === 'sent') p.resolve();
      else {
        p.reject(
          new KafkaError(`cannot write ${p.count} records to ${p.topic}: ${reply.error.message}`, {
            retriable: reply.error.retriable,
            context: { topic: p.topic, cause: reply.error.name },
          }),
        );
      }
    });
    const fail = (why: string): void => {
      if (this.worker === worker) this.worker = undefined;
      for (const [id, p] of this.pending) {
        this.pending.delete(id);
        p.reject(new KafkaError(`cannot write ${p.count} records to ${p.topic}: the producer thread ${why}`, { retriable: true, context: { topic: p.topic } }));
      }
    };
    worker.on('error', (error) => {
      log.error({ err: error.message }, 'producer thread failed');
      fail(`failed (${error.message})`);
    });
    worker.on('exit', (code) => fail(`exited with code ${code}`));
    worker.unref();
    return worker;
  }

  /** Sends `messages` to `topic` (explicit partitions kept) and waits for the acknowledgements. */
  send(topic: string, messages: readonly WorkerRecord[], options: SendOptions = {}): Promise<void> {
    if (this.closing) return Promise.reject(new KafkaError(`cannot write to ${topic}: the producer is closed`, { retriable: false, context: { topic } }));
    if (messages.length === 0) return Promise.resolve();
    this.worker ??= this.start();
    const id = this.nextId++;
    const worker = this.worker;
    // The thread keeps the process alive only while a send is in flight.
    if (this.pending.size === 0) worker.ref();
    return new Promise<void>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, topic, count: messages.length });
      const request: ProducerWorkerRequest = { type: 'send', id, topic, messages, options };
      worker.postMessage(request);
    });
  }

  /** Stops the thread after its producer has disconnected (sends still in flight fail). */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const worker = this.worker;
      this.worker = undefined;
      if (!worker) return;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => void worker.terminate().then(() => resolve()), 10_000);
        worker.once('exit', () => {
          clearTimeout(timer);
          resolve();
        });
        worker.postMessage({ type: 'close' } satisfies ProducerWorkerRequest);
      });
    })();
    return this.closing;
  }
}
