import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Instrumentation } from '../instrumentation';
import type { LiveStep } from './liveTrainer';

/** What became of a look's micro-epoch, the `outcome` label of streamrec_trainer_micro_epochs_total. */
export type MicroEpochOutcome = 'published' | 'refused' | 'not_published' | 'nothing_trained';

/** The outcome of `step`'s micro-epoch (undefined: the look found too little to run one). */
export function microEpochOutcome(step: LiveStep): MicroEpochOutcome | undefined {
  const r = step.result;
  if (!r) return undefined;
  if (step.published) return 'published';
  if (r.steps === 0) return 'nothing_trained';
  // Trained and accepted but not published: another publisher was first (the trainer goes on from its version).
  return r.accepted ? 'not_published' : 'refused';
}

/**
 * Prometheus metrics of the live trainer role (`streamrec trainer --metrics-port`): what an
 * operator alerts on besides the heartbeat file. A trainer that falls behind shows in
 * `streamrec_trainer_behind_interactions`, one whose gate keeps refusing in the outcome counts,
 * a stuck one in `streamrec_trainer_last_look_timestamp_seconds`.
 */
export class TrainerMetrics {
  readonly registry = new Registry();
  private readonly looks = new Counter({ name: 'streamrec_trainer_looks_total', help: 'Looks at the archive past the stream position', registers: [this.registry] });
  private readonly read = new Counter({ name: 'streamrec_trainer_interactions_read_total', help: 'Interactions read from the archive (each once per lineage)', registers: [this.registry] });
  private readonly microEpochs = new Counter({
    name: 'streamrec_trainer_micro_epochs_total',
    help: 'Micro-epochs by outcome: published, refused (the gate), not_published (another publisher was first), nothing_trained',
    labelNames: ['outcome'],
    registers: [this.registry],
  });
  private readonly seconds = new Histogram({
    name: 'streamrec_trainer_micro_epoch_seconds',
    help: 'Seconds of a micro-epoch (prequential scoring, fine-tuning, gate)',
    buckets: [0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120],
    registers: [this.registry],
  });
  private readonly failures = new Counter({ name: 'streamrec_trainer_look_failures_total', help: 'Looks that failed (the trainer continues the live version from its checkpoint and tries again)', registers: [this.registry] });
  private readonly rebuilds = new Counter({ name: 'streamrec_trainer_rebuilds_total', help: 'Full rebuilds started, and decided (published, refused, failed)', labelNames: ['event'], registers: [this.registry] });
  private readonly liveVersion = new Gauge({ name: 'streamrec_trainer_live_version', help: 'The live model version the trainer continues', registers: [this.registry] });
  private readonly lastLook = new Gauge({ name: 'streamrec_trainer_last_look_timestamp_seconds', help: 'When the last look ended (Unix seconds)', registers: [this.registry] });
  private readonly behind = new Gauge({
    name: 'streamrec_trainer_behind_interactions',
    help: 'Interactions archived past the stream position after the last look (counted up to 1,000,000)',
    registers: [this.registry],
  });

  /** A look: `liveVersion` the version continued after it, `behind` what was archived past its position then. */
  recordStep(step: LiveStep, liveVersion: number, behind: number | undefined, now = Date.now()): void {
    this.looks.inc();
    this.read.inc(step.read);
    const outcome = microEpochOutcome(step);
    if (outcome) this.microEpochs.inc({ outcome });
    if (step.rebuild?.phase === 'started') this.rebuilds.inc({ event: 'started' });
    if (step.rebuild?.phase === 'decided') this.rebuilds.inc({ event: step.rebuild.decision });
    this.liveVersion.set(liveVersion);
    this.lastLook.set(now / 1000);
    if (behind !== undefined) this.behind.set(behind);
  }

  /** Times every micro-epoch `instrumentation` reports (`trainer.micro_epoch_end`, which the live trainer emits). */
  follow(instrumentation: Instrumentation): void {
    instrumentation.on('trainer.micro_epoch_end', (e) => this.seconds.observe(e.durationMs / 1000));
  }

  recordFailure(): void {
    this.failures.inc();
  }
}
