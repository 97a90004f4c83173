import { z } from 'zod';
import { EventLimits } from './limits';

/**
 * Per-stage configuration schemas. Every key has a default and a description; unknown keys are
 * errors (`strictObject`). How sources override each other is in `loadConfig.ts`.
 */

const MINUTE = 60_000;

export const KafkaConfig = z
  .strictObject({
    brokers: z
      .array(z.string().regex(/^[^\s:/]+:\d+$/, 'expected host:port'))
      .min(1)
      .default(['localhost:9092'])
      .describe('Bootstrap brokers (host:port).'),
    clientId: z.string().min(1).default('streamrec').describe('Kafka client id prefix.'),
    ssl: z.boolean().default(false).describe('Use TLS to reach the brokers.'),
    sasl: z
      .strictObject({
        mechanism: z.enum(['plain', 'scram-sha-256', 'scram-sha-512']).describe('SASL mechanism.'),
        username: z.string().describe('SASL user.'),
        password: z.string().describe('SASL password.'),
      })
      .optional()
      .describe('SASL credentials, when the cluster needs them.'),
    connectionTimeoutMs: z.number().int().positive().default(3000).describe('Broker connection timeout.'),
  })
  .describe('How to reach Kafka.');
export type KafkaConfig = z.infer<typeof KafkaConfig>;

export const ClickHouseConfig = z
  .strictObject({
    url: z
      .string()
      .regex(/^(chdb:.+|https?:\/\/.+)$/, 'expected chdb:<dir>, chdb::memory:, or http(s)://host:port')
      .default('chdb:.streamrec/clickhouse')
      .describe('Embedded chDB data directory (`chdb:<dir>`) or a ClickHouse server (`http://host:8123`).'),
    database: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/)
      .default('streamrec')
      .describe('Database that holds the streamrec tables.'),
    username: z.string().default('default').describe('User for a server URL.'),
    password: z.string().default('').describe('Password for a server URL.'),
    insertRetries: z.number().int().nonnegative().default(5).describe('Retries of a failed insert before it is reported.'),
    retryBaseMs: z.number().int().positive().default(200).describe('First retry delay; doubles each time.'),
  })
  .describe('Where the archive, dead letters and metrics tables live.');
export type ClickHouseConfig = z.infer<typeof ClickHouseConfig>;

export const TopicsConfig = z
  .strictObject({
    interactions: z.string().min(1).default('interactions').describe('Topic of interaction events (key = userId).'),
    catalog: z.string().min(1).default('catalog').describe('Topic of catalog (item) events (key = itemId).'),
    changelog: z
      .string()
      .min(1)
      .default('streamrec.histories.changelog')
      .describe('Compacted topic holding the latest history of each user (key = userId).'),
    deadLetterSuffix: z.string().min(1).default('.dlq').describe('Dead letters of topic T go to T + this suffix.'),
    models: z
      .string()
      .min(1)
      .default('streamrec.models')
      .describe('Announcements of model publications (key = registry URL) when modelRegistry.announce is on: servers swap on them instead of at their next registry poll.'),
  })
  .describe('Topic names.');
export type TopicsConfig = z.infer<typeof TopicsConfig>;

export const HistoryConfig = z
  .strictObject({
    maxLength: z.number().int().min(1).max(10_000).default(50).describe('Items kept per user (the most recent N).'),
    outOfOrderToleranceMs: z
      .number()
      .int()
      .nonnegative()
      .default(10 * MINUTE)
      .describe('An event older than the user\'s newest event by at most this much is placed by ts; older ones are `late`.'),
    sessionGapMs: z.number().int().positive().default(30 * MINUTE).describe('Inactivity gap that starts a new session.'),
  })
  .describe('Per-user rolling histories.');
export type HistoryConfig = z.infer<typeof HistoryConfig>;

export const DedupeConfig = z
  .strictObject({
    maxIds: z.number().int().min(1).default(1_000_000).describe('Most event ids remembered; the oldest are forgotten first.'),
    windowMs: z
      .number()
      .int()
      .positive()
      .default(24 * 60 * MINUTE)
      .describe('Event-time window: an id is forgotten once events this much newer have been seen.'),
  })
  .describe('De-duplication by eventId within a bounded window.');
export type DedupeConfig = z.infer<typeof DedupeConfig>;

export const FlushConfig = z
  .strictObject({
    maxEvents: z
      .number()
      .int()
      .min(1)
      .default(500_000)
      .describe(
        'Flush (archive, dead letters, changelog, then commit) once this many messages are pending, even before ' +
          '`intervalMs`: a bound on the work replayed after a crash when input arrives in a burst. Each flush writes ' +
          'one changelog record per user touched since the last, so a bound low enough to flush by count more often ' +
          'than the interval costs throughput.',
      ),
    intervalMs: z
      .number()
      .int()
      .min(1)
      .default(2000)
      .describe(
        'Flush at least this often while messages are pending. Longer intervals coalesce more history updates per user ' +
          '(fewer changelog records) but replay more after a crash and delay what changelog followers see.',
      ),
    catchUpIntervalMs: z
      .number()
      .int()
      .min(1)
      .default(10_000)
      .describe(
        'The flush interval while the consumer is at least `catchUpLag` messages behind (catching up on a backlog): what ' +
          'serving sees is then old anyway, and fewer flushes write fewer changelog records, so the backlog drains faster. ' +
          '`maxEvents` still bounds the replay after a crash. Never shorter than `intervalMs`; at or below it, no catch-up mode.',
      ),
    catchUpLag: z
      .number()
      .int()
      .min(1)
      .default(100_000)
      .describe('Messages behind (summed over the partitions this process owns, as of their last batches) from which flushes go by `catchUpIntervalMs`.'),
    archiveChunkRows: z
      .number()
      .int()
      .min(1)
      .default(20_000)
      .describe('Archive rows are sent to ClickHouse in chunks of this size while processing goes on; a flush waits for them.'),
  })
  .describe('When processed batches are made durable and their offsets committed.');
export type FlushConfig = z.infer<typeof FlushConfig>;

export const ConsumerConfig = z
  .strictObject({
    sessionTimeoutMs: z
      .number()
      .int()
      .positive()
      .default(30_000)
      .describe('A member that sends no heartbeat for this long is removed from the group (crash detection).'),
    rebalanceTimeoutMs: z.number().int().positive().default(60_000).describe('How long a rebalance waits for members to rejoin.'),
    heartbeatIntervalMs: z.number().int().positive().default(3000).describe('Heartbeat period; well below the session timeout.'),
    maxBytesPerPartition: z
      .number()
      .int()
      .positive()
      .default(4 * 1024 * 1024)
      .describe('Largest fetch per partition: bigger batches amortise per-batch work.'),
    maxBytes: z
      .number()
      .int()
      .positive()
      .default(32 * 1024 * 1024)
      .describe(
        'Largest fetch response over all partitions of a broker. A consumer behind a backlog decodes a whole response at once ' +
          '(about 10k messages per MB of 100-byte events), so this also bounds that memory.',
      ),
    maxWaitMs: z
      .number()
      .int()
      .positive()
      .default(200)
      .describe('How long a broker holds a fetch that has no new messages: the extra latency of a caught-up consumer.'),
    retries: z
      .number()
      .int()
      .nonnegative()
      .default(5)
      .describe(
        'Retries of a failing consumer step (fetch, group join, commit; exponential backoff) before the consumer crashes and ' +
          'kafkajs restarts it (connections to a broker retry per the client\'s own policy first).',
      ),
    retryInitialMs: z.number().int().positive().default(300).describe('First retry delay; each later one doubles (kafkajs retry).'),
    lagCheckMs: z
      .number()
      .int()
      .positive()
      .default(5000)
      .describe(
        'How often each owned partition\'s lag is read from the broker\'s high-water mark (so a partition that delivers no batch still ' +
          'shows what is behind it), and messages deleted by the broker before they were read are looked for.',
      ),
    stallWarnMs: z
      .number()
      .int()
      .positive()
      .default(60_000)
      .describe('A partition with messages behind it that has not moved for this long is reported (a warning and ingest.partition_stalled).'),
  })
  .describe('Kafka consumer-group settings of the ingest stage.');
export type ConsumerConfig = z.infer<typeof ConsumerConfig>;

export const IngestConfig = z
  .strictObject({
    groupId: z.string().min(1).default('streamrec-ingest').describe('Consumer group of the ingest stage.'),
    consumer: ConsumerConfig.default(ConsumerConfig.parse({})),
    topics: TopicsConfig.default(TopicsConfig.parse({})),
    history: HistoryConfig.default(HistoryConfig.parse({})),
    dedupe: DedupeConfig.default(DedupeConfig.parse({})),
    flush: FlushConfig.default(FlushConfig.parse({})),
    limits: EventLimits.default(EventLimits.parse({})),
    historyStore: z
      .enum(['changelog', 'memory'])
      .default('changelog')
      .describe('`changelog`: histories survive restarts through the changelog topic; `memory`: one process only.'),
    archive: z.boolean().default(true).describe('Archive validated events in ClickHouse.'),
    lagRows: z
      .boolean()
      .default(true)
      .describe('With the archive on and a Kafka source: write each lag check\'s per-partition lag to ClickHouse (ingest_lag, charted by streamrec report).'),
    keyCheck: z
      .enum(['dead_letter', 'count', 'off'])
      .default('dead_letter')
      .describe(
        'A message whose key is absent or is not its userId (interactions) / itemId (catalog): `dead_letter` it (key_mismatch); ' +
          '`count` it and accept it (streamrec_ingest_key_mismatches_total); `off`: no check. Histories rely on one key per user: ' +
          'a mismatched key puts a user\'s events on several partitions, out of order.',
      ),
    changelogCompression: z
      .enum(['gzip', 'none'])
      .default('none')
      .describe(
        'Compression of history changelog batches by the writer. gzip in kafkajs costs the ingest process much CPU and ' +
          'so lowers its sustained rate; a broker can compress instead (topic compression.type).',
      ),
    changelogWriter: z
      .enum(['inline', 'worker'])
      .default('inline')
      .describe(
        'Where changelog records are encoded and sent: `inline` (a producer on the consumer thread) or `worker` (a ' +
          'producer on its own thread; the consumer thread only serialises the histories). Offsets are committed only ' +
          'after the broker acknowledged the records either way. The worker thread competes for cores with the others ' +
          '(chDB\'s among them), so `worker` is for machines with cores to spare.',
      ),
    fromBeginning: z.boolean().default(true).describe('A new consumer group starts at the earliest offset.'),
  })
  .describe('The ingest stage.');
export type IngestConfig = z.infer<typeof IngestConfig>;

export const ArtifactsConfig = z
  .strictObject({
    dir: z
      .string()
      .min(1)
      .default('.streamrec/artifacts')
      .describe('Artifact store: embeddings, PCA, codebooks, semantic IDs, checkpoints (each with a manifest).'),
    registryFile: z
      .string()
      .min(1)
      .default('.streamrec/artifacts/item-registry.json')
      .describe('The append-only item registry (external item id -> dense id 1..N).'),
    seed: z.number().int().default(2024).describe('Seed of the batch jobs (features, quantizer, trainer).'),
  })
  .describe('Where batch jobs keep their outputs.');
export type ArtifactsConfig = z.infer<typeof ArtifactsConfig>;

export const StreamrecConfig = z
  .strictObject({
    artifacts: ArtifactsConfig.default(ArtifactsConfig.parse({})),
    kafka: KafkaConfig.default(KafkaConfig.parse({})),
    clickhouse: ClickHouseConfig.default(ClickHouseConfig.parse({})),
    ingest: IngestConfig.default(IngestConfig.parse({})),
  })
  .describe('All settings of streamrec.');
export type StreamrecConfig = z.infer<typeof StreamrecConfig>;
