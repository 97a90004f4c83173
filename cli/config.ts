import { z } from 'zod';
import { FeaturesConfig } from '../features';
import { QuantizerSettings } from '../quantizer';
import { loadConfig, mergeConfig } from '../schemas/loadConfig';
import type { KafkaUrl } from '../infra/kafka';
import { StreamrecConfig } from '../schemas/config';

/**
 * The configuration of the whole command line: the per-stage schemas composed. The trainer's
 * section is checked when a command builds the trainer config (it needs the model type).
 */
export const AppConfig = StreamrecConfig.extend({
  features: FeaturesConfig.default(FeaturesConfig.parse({})),
  quantizer: QuantizerSettings.default(QuantizerSettings.parse({})),
  trainer: z
    .record(z.string(), z.unknown())
    .default({})
    .describe('Trainer settings (trainer/config.ts): model, train, eval; the model type comes from --model.'),
});
export type AppConfig = z.infer<typeof AppConfig>;

/** Options every command accepts. */
export interface GlobalOptions {
  readonly config?: string;
}

/**
 * The configuration of a command: defaults < `--config` file < `STREAMREC__*` environment <
 * the command's own flags (`overrides`).
 */
export function commandConfig(globals: GlobalOptions, overrides: Record<string, unknown> = {}): AppConfig {
  return loadConfig(AppConfig, {
    ...(globals.config ? { file: globals.config } : {}),
    env: process.env,
    overrides: mergeConfig({}, overrides),
  });
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
