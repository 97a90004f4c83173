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
    this.flushSeconds = new Histogram({
      name: 'streamrec_ingest_flush_seconds',
      help: 'Time to make pending work durable and commit.',
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
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
      for (const [code, n] of Object.entries(b.deadLetterCodes)) this.deadLetters.inc({ topic: b.topic, code }, n);
    });
    const offFlush = instrumentation.on('ingest.flush_end', (f) => this.flushSeconds.observe(f.durationMs / 1000));
    return () => {
      offBatch();
      offFlush();
    };
  }
}
