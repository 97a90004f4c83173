import { Kafka, logLevel, type KafkaConfig as KafkaJsConfig, type LogEntry, type Producer, type Message } from 'kafkajs';
import { ConfigError } from '../../errors';
import { createLogger } from '../../logging';
import type { KafkaConfig } from '../../schemas/config';

const kafkaLog = createLogger('kafkajs');
// The default (Java-compatible murmur2) partitioner is the one we want; no need to warn about it.
process.env.KAFKAJS_NO_PARTITIONER_WARNING ??= '1';

function logCreator(): (entry: LogEntry) => void {
  return ({ level, log: { message, ...extra } }) => {
    const fields = { namespace: extra.namespace ?? undefined, broker: extra.broker, error: extra.error };
    if (level === logLevel.ERROR) kafkaLog.error(fields, message);
    else if (level === logLevel.WARN) kafkaLog.warn(fields, message);
    else if (level === logLevel.INFO) kafkaLog.debug(fields, message);
  };
}

/** A kafkajs client for the configured cluster, logging through pino. */
export function createKafka(config: KafkaConfig, clientIdSuffix?: string): Kafka {
  const options: KafkaJsConfig = {
    clientId: clientIdSuffix ? `${config.clientId}-${clientIdSuffix}` : config.clientId,
    brokers: config.brokers,
    ssl: config.ssl,
    connectionTimeout: config.connectionTimeoutMs,
    logLevel: logLevel.WARN,
    logCreator,
    ...(config.sasl ? { sasl: config.sasl as never } : {}),
  };
  return new Kafka(options);
}

export interface KafkaUrl {
  readonly brokers: string[];
  readonly topic?: string;
}

/** Parses `kafka://host:port[,host:port]/topic` (the topic is optional). */
export function parseKafkaUrl(url: string): KafkaUrl {
  const match = /^kafka:\/\/([^/]+)(?:\/(.*))?$/.exec(url);
  if (!match) throw new ConfigError(`expected kafka://host:port[,host:port][/topic], got ${JSON.stringify(url)}`);
  const brokers = (match[1] as string).split(',').filter((b) => b.length > 0);
  for (const b of brokers) {
    if (!/^[^\s:/]+:\d+$/.test(b)) throw new ConfigError(`kafka url ${JSON.stringify(url)}: broker ${JSON.stringify(b)} is not host:port`);
  }
  const topic = match[2] && match[2].length > 0 ? decodeURIComponent(match[2]) : undefined;
  return topic ? { brokers, topic } : { brokers };
}

/**
 * Sends messages in requests of at most `maxRequestBytes` per call (brokers reject requests
 * over `message.max.bytes`, 1 MiB by default, and kafkajs does not split them), waiting for all
 * in-sync replicas.
 */
export async function sendChunked(
  producer: Producer,
  topic: string,
  messages: readonly Message[],
  options: { maxRequestBytes?: number; compression?: number } = {},
): Promise<void> {
  const limit = options.maxRequestBytes ?? 768 * 1024;
  let chunk: Message[] = [];
  let bytes = 0;
  const flush = async (): Promise<void> => {
    if (chunk.length === 0) return;
    const out = chunk;
    chunk = [];
    bytes = 0;
    await producer.send({ topic, messages: out, acks: -1, ...(options.compression !== undefined ? { compression: options.compression } : {}) });
  };
  for (const m of messages) {
    const size = sizeOf(m.value) + sizeOf(m.key) + 64;
    if (bytes + size > limit && chunk.length > 0) await flush();
    chunk.push(m);
    bytes += size;
  }
  await flush();
}

function sizeOf(v: Message['value'] | Message['key']): number {
  if (v === null || v === undefined) return 0;
  return typeof v === 'string' ? Buffer.byteLength(v) : v.length;
}
