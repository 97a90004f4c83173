import { startLocalBroker, type LocalBroker } from './brokers/localBroker';

declare global {
  // eslint-disable-next-line no-var
  var __streamrecBroker: LocalBroker | undefined;
}

/**
 * Starts one Kafka-protocol broker for the whole test run and hands its address to the test
 * workers through KAFKA_BROKERS: an external one when KAFKA_BROKERS is set, a real Kafka in a
 * container where Docker runs, else librdkafka's mock cluster (kcat).
 */
export default async function globalSetup(): Promise<void> {
  // Test workers inherit this environment: TensorFlow's native start-up lines stay out of the
  // output, and it runs as the CLI runs it (oneDNN's custom ops off; infra/tf.ts).
  process.env.TF_CPP_MIN_LOG_LEVEL ??= '2';
  process.env.TF_ENABLE_ONEDNN_OPTS ??= '0';
  const broker = await startLocalBroker();
  globalThis.__streamrecBroker = broker;
  process.env.KAFKA_BROKERS = broker.brokers.join(',');
  process.env.STREAMREC_TEST_KAFKA_KIND = broker.kind;
  process.env.KAFKA_IS_MOCK = broker.fullKafka ? '0' : '1';
  process.stderr.write(`\n[streamrec tests] Kafka: ${broker.kind} at ${broker.brokers.join(',')}\n`);
}
