import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Instrumentation } from '../instrumentation';

/** Prometheus metrics of the ingest stage, fed from instrumentation events. */
export class IngestMetrics {
  readonly registry: Registry;
  readonly messages: Counter<'topic' | 'result'>;
  readonly deadLetters: Counter<'topic' | 'code'>;
  readonly flushSeconds: Histogram;
  readonly users: Gauge;
  readonly consumerRestarts: Gauge;
  readonly fetches: Counter<'broker'>;
  readonly keyMismatches: Counter<'topic'>;
  readonly lostToRetention: Counter<'topic'>;
  readonly stalls: Counter<'topic'>;
  readonly fetchSeconds: Histogram;
  readonly lag: Gauge<'topic' | 'partition'>;
  /** What the scrape-time gauges read (set once the runtime has its store and source). */
  private readonly readers: { users?: () => number; restarts?: () => number } = {};

  constructor(registry: Registry = new Registry()) {
    this.registry = registry;
    this.messages = new Counter({
      name: 'streamrec_ingest_messages_total',
      help: 'Messages consumed, by result (accepted, dead_letter, skipped).',
      labelNames: ['topic', 'result'],
      registers: [registry],
    });
    this.deadLetters = new Counter({
      name: 'streamrec_ingest_dead_letters_total',
      help: 'Dead letters by error code.',
      labelNames: ['topic', 'code'],
      registers: [registry],
    });
    this.keyMismatches = new Counter({
      name: 'streamrec_ingest_key_mismatches_total',
      help: 'Messages accepted although their key is absent or not their id (ingest.keyCheck count).',
      labelNames: ['topic'],
      registers: [registry],
    });
    this.lostToRetention = new Counter({
      name: 'streamrec_ingest_lost_to_retention_total',
      help: 'Messages the broker deleted (retention, a size limit) before ingest read them: neither archived nor dead-lettered.',
      labelNames: ['topic'],
      registers: [registry],
    });
    this.stalls = new Counter({
      name: 'streamrec_ingest_partition_stalls_total',
      help: 'Times a partition with messages behind it did not move for ingest.consumer.stallWarnMs.',
      labelNames: ['topic'],
      registers: [registry],
    });
    this.flushSeconds = new Histogram({
      name: 'streamrec_ingest_flush_seconds',
      help: 'Time to make pending work durable and commit.',
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    });
    this.fetches = new Counter({
      name: 'streamrec_ingest_fetches_total',
      help: 'Fetch responses the Kafka consumer got, by broker node id (messages per fetch: the messages rate over this rate).',
      labelNames: ['broker'],
      registers: [registry],
    });
    this.fetchSeconds = new Histogram({
      name: 'streamrec_ingest_fetch_seconds',
      help: 'Time from a fetch request to its decoded response (includes waiting for the event loop).',
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
      registers: [registry],
    });
    this.lag = new Gauge({
      name: 'streamrec_ingest_consumer_lag',
      help: 'Messages of a partition behind the last batch handled (partition end when fetched, less the next offset); only partitions this process owns.',
      labelNames: ['topic', 'partition'],
      registers: [registry],
    });
    this.users = this.readGauge('streamrec_history_users', 'Users with a history in this process.', 'users');
    this.consumerRestarts = this.readGauge(
      'streamrec_ingest_consumer_restarts',
      'Times the Kafka consumer crashed on a broker failure past its retries and was restarted (since the process started).',
      'restarts',
    );
  }

  /** Reads the user count from `source` whenever metrics are scraped. */
  trackUsers(source: () => number): void {
    this.readers.users = source;
  }

  /** Reads the consumer's restart count from `source` whenever metrics are scraped. */
  trackRestarts(source: () => number): void {
    this.readers.restarts = source;
  }

  /** A gauge set from `readers[reader]` at each scrape (0 until a reader is tracked). */
  private readGauge(name: string, help: string, reader: keyof IngestMetrics['readers']): Gauge {
    const readers = this.readers;
    return new Gauge({
      name,
      help,
      registers: [this.registry],
      collect() {
        this.set(readers[reader]?.() ?? 0);
      },
    });
  }

  attach(instrumentation: Instrumentation): () => void {
    const offBatch = instrumentation.on('ingest.batch_end', (b) => {
      this.messages.inc({ topic: b.topic, result: 'accepted' }, b.accepted);
      this.messages.inc({ topic: b.topic, result: 'dead_letter' }, b.deadLetters);
      this.messages.inc({ topic: b.topic, result: 'skipped' }, b.skipped);
      if (b.keyMismatches > 0) this.keyMismatches.inc({ topic: b.topic }, b.keyMismatches);
      for (const [code, n] of Object.entries(b.deadLetterCodes)) this.deadLetters.inc({ topic: b.topic, code }, n);
    });
    // Counted as accepted when validated; the archive refusing the row makes it a dead letter too.
    const offRefused = instrumentation.on('ingest.sink_refused', (r) => this.deadLetters.inc({ topic: r.topic, code: 'sink_refused' }));
    const offFlush = instrumentation.on('ingest.flush_end', (f) => this.flushSeconds.observe(f.durationMs / 1000));
    const offFetch = instrumentation.on('ingest.fetch_end', (f) => {
      this.fetches.inc({ broker: String(f.broker) });
      this.fetchSeconds.observe(f.durationMs / 1000);
    });
    const offLag = instrumentation.on('ingest.partition_lag', (l) => this.lag.set({ topic: l.topic, partition: String(l.partition) }, l.lag));
    // A revoked partition's lag is its new owner's to report.
    const offGap = instrumentation.on('ingest.retention_gap', (g) => this.lostToRetention.inc({ topic: g.topic }, g.messages));
    const offStall = instrumentation.on('ingest.partition_stalled', (s) => this.stalls.inc({ topic: s.topic }));
    const offAssignment = instrumentation.on('ingest.assignment', (a) => {
      for (const partition of a.revoked) this.lag.remove({ topic: a.topic, partition: String(partition) });
    });
    return () => {
      offBatch();
      offRefused();
      offFlush();
      offFetch();
      offLag();
      offGap();
      offStall();
      offAssignment();
    };
  }
}
