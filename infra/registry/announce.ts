import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Kafka } from 'kafkajs';
import { z } from 'zod';
import { createLogger } from '../../logging';
import { PublishedModel, type ModelRegistry, type PublishRequest, type WatchOptions } from './modelRegistry';

const log = createLogger('infra.registry.announce');

/**
 * A publication announced on Kafka (the model-published topic, `ingest.topics.models`): the
 * registry it was made in (also the record key) and the publication. The registry stays the
 * truth; an announcement tells servers to look now instead of at their next poll.
 */
export const ModelAnnouncement = z.strictObject({
  registry: z.string().min(1),
  model: PublishedModel,
});
export type ModelAnnouncement = z.infer<typeof ModelAnnouncement>;

/**
 * A registry whose publications are also announced on `topic`. The announcement follows the
 * publication (a publication that fails is not announced); an announcement that cannot be sent is
 * logged and the publication stands (servers find it at their next poll); a publisher waits for
 * it at most `waitMs` (the send goes on behind). Publications are rare
 * (one per micro-epoch at most), so each one connects a producer and disconnects it after: no
 * connection is held open between them.
 */
export class AnnouncingRegistry implements ModelRegistry {
  announced = 0;

  constructor(
    private readonly inner: ModelRegistry,
    private readonly kafka: Kafka,
    readonly topic: string,
    private readonly waitMs = 5000,
  ) {}

  get url(): string {
    return this.inner.url;
  }

  async publish(request: PublishRequest): Promise<PublishedModel> {
    const model = await this.inner.publish(request);
    // A broker that is down costs the publisher at most `waitMs`; the send goes on behind it.
    const sent = this.announce(model).catch((error: unknown) => log.warn({ err: error, topic: this.topic, version: model.version }, 'publication not announced: servers pick it up at their next registry poll'));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([sent, new Promise<void>((resolve) => (timer = setTimeout(resolve, this.waitMs)))]);
    clearTimeout(timer);
    return model;
  }

  private async announce(model: PublishedModel): Promise<void> {
    const producer = this.kafka.producer();
    await producer.connect();
    try {
      const announcement: ModelAnnouncement = { registry: this.inner.url, model };
      await producer.send({ topic: this.topic, messages: [{ key: this.inner.url, value: JSON.stringify(announcement) }] });
      this.announced++;
    } finally {
      await producer.disconnect();
    }
  }

  live(): Promise<PublishedModel | undefined> {
    return this.inner.live();
  }

  history(): Promise<PublishedModel[]> {
    return this.inner.history();
  }

  watch(listener: (model: PublishedModel) => void, options?: WatchOptions): () => void {
    return this.inner.watch(listener, options);
  }
}

export interface AnnouncementFollower {
  /** Announcements of `registry` acted on, and records skipped (malformed, or of another registry). */
  readonly stats: { readonly received: number; readonly skipped: number };
  stop(): Promise<void>;
}

/**
 * Follows `topic` from its end (a consumer group of its own, so every server sees every
 * announcement) and calls `onAnnouncement` with each publication announced for `registry`. A
 * record that is not an announcement is logged with the reason and skipped; one of another
 * registry is skipped. Resolves once the consumer has joined.
 */
export async function followAnnouncements(kafka: Kafka, topic: string, registry: string, onAnnouncement: (model: PublishedModel) => void): Promise<AnnouncementFollower> {
  const groupId = `streamrec-models-${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 200 });
  const stats = { received: 0, skipped: 0 };
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: false });
    const joined = new Promise<void>((resolve) => {
      const off = consumer.on(consumer.events.GROUP_JOIN, () => {
        off();
        resolve();
      });
    });
    await consumer.run({
      eachMessage: async ({ message, partition }) => {
        let parsed: ModelAnnouncement;
        try {
          parsed = ModelAnnouncement.parse(JSON.parse(message.value?.toString('utf8') ?? 'null'));
        } catch (error) {
          stats.skipped++;
          log.warn({ topic, partition, offset: message.offset, err: error instanceof Error ? error.message.slice(0, 500) : String(error) }, 'not a model announcement: skipped');
          return;
        }
        if (parsed.registry !== registry) {
          stats.skipped++;
          return;
        }
        stats.received++;
        onAnnouncement(parsed.model);
      },
    });
    await joined;
  } catch (error) {
    await consumer.disconnect();
    throw error;
  }
  return { stats, stop: () => consumer.disconnect() };
}
