import type { Message, Producer } from 'kafkajs';
import type { DeadLetter } from '../../schemas/events';
import { sendChunked } from './client';

/** Header names on dead-letter messages (values are UTF-8 strings). */
export const DLQ_HEADERS = {
  code: 'streamrec-error-code',
  message: 'streamrec-error-message',
  path: 'streamrec-error-path',
  topic: 'streamrec-origin-topic',
  partition: 'streamrec-origin-partition',
  offset: 'streamrec-origin-offset',
  failedAt: 'streamrec-failed-at',
} as const;

/** The dead-letter message for `d`: the original key and bytes, with the reason in headers. */
export function deadLetterMessage(d: DeadLetter): Message {
  const headers: Record<string, string> = {
    [DLQ_HEADERS.code]: d.error.code,
    [DLQ_HEADERS.message]: d.error.message,
    [DLQ_HEADERS.topic]: d.origin.topic,
    [DLQ_HEADERS.partition]: String(d.origin.partition),
    [DLQ_HEADERS.offset]: d.origin.offset,
    [DLQ_HEADERS.failedAt]: new Date(d.failedAt).toISOString(),
  };
  if (d.error.path !== null) headers[DLQ_HEADERS.path] = d.error.path;
  return { key: d.origin.key, value: Buffer.from(d.payload, 'base64'), headers };
}

/** Publishes dead letters of topic T to `T + suffix`. */
export class KafkaDeadLetterPublisher {
  constructor(
    private readonly producer: Producer,
    private readonly suffix: string,
  ) {}

  async publish(letters: readonly DeadLetter[]): Promise<void> {
    const byTopic = new Map<string, Message[]>();
    for (const d of letters) {
      const topic = `${d.origin.topic}${this.suffix}`;
      const list = byTopic.get(topic) ?? [];
      list.push(deadLetterMessage(d));
      byTopic.set(topic, list);
    }
    for (const [topic, messages] of byTopic) await sendChunked(this.producer, topic, messages);
  }
}
