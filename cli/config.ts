import { loadAppConfig, type AppConfig } from '../jobs';
import type { KafkaUrl } from '../infra/kafka';

/** Options every command accepts. */
export interface GlobalOptions {
  readonly config?: string;
}

/**
 * The configuration of a command: defaults < `--config` file < `STREAMREC__*` environment <
 * the command's own flags (`overrides`).
 */
export function commandConfig(globals: GlobalOptions, overrides: Record<string, unknown> = {}): AppConfig {
  return loadAppConfig({ ...(globals.config ? { file: globals.config } : {}), env: process.env, overrides });
}

/**
 * The config that a `kafka://host:port[,host:port][/topic]` URL and a `--catalog-topic` name give: the
 * brokers, and the interactions and catalog topics where given (merge `topics` into `ingest`).
 */
export function kafkaTarget(url: KafkaUrl | undefined, catalogTopic: string | undefined): { kafka?: { brokers: string[] }; topics: { interactions?: string; catalog?: string } } {
  return {
    ...(url ? { kafka: { brokers: url.brokers } } : {}),
    topics: { ...(url?.topic ? { interactions: url.topic } : {}), ...(catalogTopic ? { catalog: catalogTopic } : {}) },
  };
}
