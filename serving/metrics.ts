import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Prometheus metrics of a serving process (its own registry: several servers can share a process in tests). */
export class ServingMetrics {
  readonly registry = new Registry();
  readonly latency = new Histogram({
    name: 'streamrec_serving_request_seconds',
    help: 'Request latency by route',
    labelNames: ['route'] as const,
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [this.registry],
  });
  readonly responses = new Counter({ name: 'streamrec_serving_responses_total', help: 'Responses by route and status', labelNames: ['route', 'status'] as const, registers: [this.registry] });
  readonly fallbacks = new Counter({ name: 'streamrec_serving_fallbacks_total', help: 'Recommendations answered with the popular items (no usable history)', registers: [this.registry] });
  readonly modelVersion = new Gauge({ name: 'streamrec_serving_model_version', help: 'Published version of the model answering (0: none loaded)', registers: [this.registry] });
  readonly items = new Gauge({ name: 'streamrec_serving_items', help: 'Items the model scores (the index size)', registers: [this.registry] });
  readonly swaps = new Gauge({ name: 'streamrec_serving_swaps', help: 'Model versions swapped in since start', registers: [this.registry] });
  readonly failedSwaps = new Gauge({ name: 'streamrec_serving_failed_swaps', help: 'Published versions that could not be loaded since start', registers: [this.registry] });
  readonly historyStaleness = new Gauge({ name: 'streamrec_serving_history_staleness_seconds', help: 'Age of the newest history change serving has read', registers: [this.registry] });
  readonly historyUsers = new Gauge({ name: 'streamrec_serving_history_users', help: 'Users with a history', registers: [this.registry] });

  constructor() {
    // The process's own: event-loop lag (nodejs_eventloop_lag_*: what a request waits behind, e.g. a
    // training step in `streamrec run`), heap, GC, CPU.
    collectDefaultMetrics({ register: this.registry });
  }
}
