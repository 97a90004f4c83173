import { createLogger } from '../../logging';
import { startMockCluster } from './mockCluster';

const log = createLogger('infra.kafka.local');

/** A broker for tests, benchmarks and demos, and what kind it is (printed by tests). */
export interface LocalBroker {
  readonly brokers: string[];
  readonly kind: string;
  /** False on the mock: admin createTopics, transactions and idempotent producers are missing. */
  readonly fullKafka: boolean;
  stop(): Promise<void>;
}

/**
 * `KAFKA_BROKERS` when set; else a real Apache Kafka in a container when a container runtime
 * exists (testcontainers); else librdkafka's mock cluster from `kcat`.
 */
export async function startLocalBroker(env: NodeJS.ProcessEnv = process.env): Promise<LocalBroker> {
  if (env.KAFKA_BROKERS) {
    return {
      brokers: env.KAFKA_BROKERS.split(','),
      kind: env.KAFKA_BROKER_KIND ?? 'external (KAFKA_BROKERS)',
      fullKafka: env.KAFKA_IS_MOCK !== '1',
      stop: async () => {},
    };
  }
  if (env.STREAMREC_TRY_CONTAINERS !== '0') {
    try {
      const { KafkaContainer } = (await import('@testcontainers/kafka')) as typeof import('@testcontainers/kafka');
      const container = await new KafkaContainer('confluentinc/cp-kafka:7.7.1').withKraft().start();
      const brokers = [`${container.getHost()}:${container.getMappedPort(9093)}`];
      return { brokers, kind: 'apache kafka (testcontainers)', fullKafka: true, stop: async () => void (await container.stop()) };
    } catch (error) {
      log.debug({ err: (error as Error).message }, 'no container runtime; using the librdkafka mock cluster');
    }
  }
  const mock = await startMockCluster();
  return { brokers: mock.brokers, kind: 'librdkafka mock cluster (kcat)', fullKafka: false, stop: () => mock.stop() };
}
