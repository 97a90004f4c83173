import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** What the gauges show, read when the metrics are collected (a scrape, or a cluster's primary asking: serving/cluster.ts). */
export interface ServingSample {
  readonly modelVersion: number;
  readonly items: number;
  readonly swaps: number;
  readonly failedSwaps: number;
  readonly failedCatalogReloads: number;
  readonly historyUsers: number;
  /** Seconds since the newest history change serving has read; undefined before the first. */
  readonly historyStalenessSeconds: number | undefined;
}

/**
 * Prometheus metrics of a serving process (its own registry: several servers can share a process
 * in tests). In a serving cluster every series carries its worker's label (serving/cluster.ts).
 */
export class ServingMetrics {
  readonly registry = new Registry();
  private sampler: (() => ServingSample) | undefined;
  readonly latency = new Histogram({
    name: 'streamrec_serving_request_seconds',
    help: 'Request latency by route',
    labelNames: ['route'] as const,
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [this.registry],
  });
  readonly responses = new Counter({ name: 'streamrec_serving_responses_total', help: 'Responses by route and status', labelNames: ['route', 'status'] as const, registers: [this.registry] });
  readonly fallbacks = new Counter({ name: 'streamrec_serving_fallbacks_total', help: 'Recommendations answered with the popular items (no usable history)', registers: [this.registry] });
  readonly modelVersion = this.gauge('streamrec_serving_model_version', 'Published version of the model answering (0: none loaded)', (s) => s.modelVersion);
  readonly items = this.gauge('streamrec_serving_items', 'Items the model scores (the index size)', (s) => s.items);
  readonly swaps = this.counter('streamrec_serving_swaps_total', 'Model versions swapped in since start', (s) => s.swaps);
  readonly failedSwaps = this.counter('streamrec_serving_failed_swaps_total', 'Published versions that could not be loaded since start', (s) => s.failedSwaps);
  readonly failedCatalogReloads = this.counter(
    'streamrec_serving_failed_catalog_reloads_total',
    'Loads of the active version with a grown catalog that failed since start (the version kept serving its catalog)',
    (s) => s.failedCatalogReloads,
  );
  readonly historyStaleness = this.gauge('streamrec_serving_history_staleness_seconds', 'Age of the newest history change serving has read (no sample before the first, or where it is not tracked)', (s) => s.historyStalenessSeconds);
  readonly historyUsers = this.gauge('streamrec_serving_history_users', 'Users with a history', (s) => s.historyUsers);
  /** 1 per serving process: in a cluster, one series per worker that answered the scrape. */
  readonly workers = new Gauge({ name: 'streamrec_serving_workers', help: 'Serving processes that answered this scrape (one series per worker in a cluster)', registers: [this.registry] });

  constructor() {
    this.workers.set(1);
    // The process's own: event-loop lag (nodejs_eventloop_lag_*: what a request waits behind, e.g. a
    // training step in `streamrec run`), heap, GC, CPU.
    collectDefaultMetrics({ register: this.registry });
  }

  /** Where the gauges are read from at each collection. */
  sampleWith(sampler: () => ServingSample): void {
    this.sampler = sampler;
  }

  /** A counter that shows the sampler's running count when collected (a count that only grows: rate() and increase() apply). */
  private counter(name: string, help: string, pick: (sample: ServingSample) => number): Counter {
    const metrics = this;
    return new Counter({
      name,
      help,
      registers: [this.registry],
      collect() {
        const sample = metrics.sampler?.();
        if (!sample) return;
        this.reset();
        this.inc(pick(sample));
      },
    });
  }

  /** A gauge set from the sampler's reading when collected; without a sample while the reading is undefined. */
  private gauge(name: string, help: string, pick: (sample: ServingSample) => number | undefined): Gauge {
    const metrics = this;
    return new Gauge({
      name,
      help,
      registers: [this.registry],
      collect() {
        const sample = metrics.sampler?.();
        const value = sample && pick(sample);
        // Unknown: no sample (a gauge without labels shows 0 until it is set, and keeps its last value).
        if (value === undefined) this.remove();
        else this.set(value);
      },
    });
  }
}
