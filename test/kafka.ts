import { randomUUID } from 'node:crypto';
import type { Kafka } from 'kafkajs';
import { createKafka } from '../infra/kafka';
import { KafkaConfig } from '../schemas/config';

/** The broker the test run started (see globalSetup), and a unique name per call for topics and groups. */
export function testKafka(clientId = 'test'): Kafka {
  return createKafka(testKafkaConfig(clientId));
}

/** The settings behind {@link testKafka}, for code that builds its own client (worker threads). */
export function testKafkaConfig(clientId = 'test'): KafkaConfig {
  const brokers = process.env.KAFKA_BROKERS;
  if (!brokers) throw new Error('KAFKA_BROKERS is not set: run the tests through jest (globalSetup starts a broker)');
  return KafkaConfig.parse({ brokers: brokers.split(','), clientId });
}

export function testBrokers(): string[] {
  return (process.env.KAFKA_BROKERS ?? '').split(',');
}

export function uniqueName(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

/** Which broker runs the integration tests, for test names and output. */
export function kafkaKind(): string {
  return process.env.STREAMREC_TEST_KAFKA_KIND ?? 'unknown';
}

/** True when the broker is librdkafka's mock (no admin createTopics, no transactions). */
export function isMockKafka(): boolean {
  return process.env.KAFKA_IS_MOCK === '1';
}
