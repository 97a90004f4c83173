import { createKafka } from '../infra/kafka';
import { AnnouncingRegistry, MemoryModelRegistry, followAnnouncements, type PublishedModel } from '../infra/registry';
import { EVALUATION, KNOWN, contractLookup, describeModelRegistryContract, eventually } from '../infra/registry/testing/contract';
import { KafkaConfig } from '../schemas/config';
import { kafkaKind, testKafka, uniqueName } from './kafka';

/**
 * The model-published topic on a Kafka-protocol broker: a registry that announces its
 * publications behaves as the registry it wraps (the registry contract), a follower sees each
 * announcement of its registry and skips other registries' and records that are not
 * announcements, and a publication stands when the announcement cannot be sent.
 */
describeModelRegistryContract(`announcing (on ${kafkaKind()})`, async (lookup) => ({
  registry: new AnnouncingRegistry(new MemoryModelRegistry(lookup), testKafka('announce-contract'), uniqueName('models')),
  cleanup: async () => undefined,
}));

describe(`model announcements on ${kafkaKind()}`, () => {
  it('reaches a follower of the same registry; other registries\' announcements and malformed records are skipped', async () => {
    const kafka = testKafka('announce');
    const topic = uniqueName('models');
    const registry = new AnnouncingRegistry(new MemoryModelRegistry(contractLookup), kafka, topic);
    const heard: PublishedModel[] = [];
    const follower = await followAnnouncements(kafka, topic, registry.url, (model) => heard.push(model));
    const producer = kafka.producer();
    await producer.connect();
    try {
      await producer.send({
        topic,
        messages: [
          { key: 'x', value: 'not json' },
          { key: 'x', value: JSON.stringify({ registry: registry.url, model: { version: 'one' } }) },
          { key: 'dir:/elsewhere', value: JSON.stringify({ registry: 'dir:/elsewhere', model: { version: 7, checkpointId: KNOWN.a, modelType: 'ccfrec', publishedAt: new Date().toISOString(), evaluation: EVALUATION } }) },
        ],
      });
      const first = await registry.publish({ checkpointId: KNOWN.a, evaluation: EVALUATION, reason: 'first' });
      const second = await registry.publish({ checkpointId: KNOWN.b, evaluation: EVALUATION });
      await eventually(() => heard.length === 2, 15_000, 'two announcements');
      expect(heard).toEqual([first, second]);
      await eventually(() => follower.stats.skipped === 3, 5_000, 'the skipped records');
      expect(follower.stats).toEqual({ received: 2, skipped: 3 });
      expect(registry.announced).toBe(2);
    } finally {
      await producer.disconnect();
      await follower.stop();
    }
  });

  it('keeps a publication whose announcement cannot be sent (no broker): servers find it at their next poll', async () => {
    const unreachable = createKafka(KafkaConfig.parse({ brokers: ['127.0.0.1:1'], clientId: 'announce-refused', connectionTimeoutMs: 200 }));
    const registry = new AnnouncingRegistry(new MemoryModelRegistry(contractLookup), unreachable, uniqueName('models'), 1000);
    const started = Date.now();
    const model = await registry.publish({ checkpointId: KNOWN.a, evaluation: EVALUATION });
    expect(Date.now() - started).toBeLessThan(3000); // the publisher waited at most its bound
    expect(await registry.live()).toEqual(model);
    expect(registry.announced).toBe(0);
  });
});
