export default async function globalSetup(): Promise<void> {
  // Kafka is started lazily by the integration tests that need it (test/kafka.ts).
}
