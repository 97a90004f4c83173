import { Instrumentation } from '../instrumentation';
import type { MicroEpochResult } from '../trainer';
import type { LiveStep } from './liveTrainer';
import { microEpochOutcome, TrainerMetrics } from './trainerMetrics';

const result = (over: Partial<MicroEpochResult>): MicroEpochResult => ({ steps: 4, accepted: true, seconds: 1.5, ...over }) as MicroEpochResult;
const published = { version: 7 } as NonNullable<LiveStep['published']>;

/** The value of a sample line `name{labels} value` in Prometheus text, or undefined when there is none. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('TrainerMetrics', () => {
  it('names the outcome of each kind of look', () => {
    expect(microEpochOutcome({ read: 0, unknownItems: 0, newItems: 0 })).toBeUndefined();
    expect(microEpochOutcome({ read: 5, unknownItems: 0, newItems: 0, result: result({}), published })).toBe('published');
    expect(microEpochOutcome({ read: 5, unknownItems: 0, newItems: 0, result: result({ accepted: false }) })).toBe('refused');
    expect(microEpochOutcome({ read: 5, unknownItems: 0, newItems: 0, result: result({ steps: 0 }) })).toBe('nothing_trained');
    expect(microEpochOutcome({ read: 5, unknownItems: 0, newItems: 0, result: result({}), notPublished: 'the live version changed meanwhile' })).toBe('not_published');
  });

  it('counts looks, interactions, outcomes, failures and rebuilds; shows the live version, the last look and what is behind', async () => {
    const metrics = new TrainerMetrics();
    const instrumentation = new Instrumentation();
    metrics.follow(instrumentation);
    // The micro-epochs' seconds come from the trainer's events (one per micro-epoch it runs).
    for (const seconds of [1.5, 45]) instrumentation.emit('trainer.micro_epoch_end', { runId: 'live-1', epoch: 0, samples: 10, loss: 1, durationMs: seconds * 1000 });
    metrics.recordStep({ read: 0, unknownItems: 0, newItems: 0 }, 6, 0, 1_000_000);
    metrics.recordStep({ read: 120, unknownItems: 0, newItems: 0, result: result({}), published, rebuild: { phase: 'started', rebuildId: 'r1', trigger: 'schedule', reason: 'due' } }, 7, 30, 2_000_000);
    metrics.recordStep({ read: 30, unknownItems: 0, newItems: 0, result: result({ accepted: false, seconds: 45 }), rebuild: { phase: 'decided', rebuildId: 'r1', decision: 'refused', detail: 'worse' } }, 7, undefined, 3_000_000);
    metrics.recordFailure();
    const text = await metrics.registry.metrics();
    expect(sample(text, 'streamrec_trainer_looks_total')).toBe(3);
    expect(sample(text, 'streamrec_trainer_interactions_read_total')).toBe(150);
    expect(sample(text, 'streamrec_trainer_micro_epochs_total{outcome="published"}')).toBe(1);
    expect(sample(text, 'streamrec_trainer_micro_epochs_total{outcome="refused"}')).toBe(1);
    expect(sample(text, 'streamrec_trainer_micro_epochs_total{outcome="nothing_trained"}')).toBeUndefined();
    expect(sample(text, 'streamrec_trainer_micro_epoch_seconds_count')).toBe(2);
    expect(sample(text, 'streamrec_trainer_micro_epoch_seconds_bucket{le="2"}')).toBe(1);
    expect(sample(text, 'streamrec_trainer_look_failures_total')).toBe(1);
    expect(sample(text, 'streamrec_trainer_rebuilds_total{event="started"}')).toBe(1);
    expect(sample(text, 'streamrec_trainer_rebuilds_total{event="refused"}')).toBe(1);
    expect(sample(text, 'streamrec_trainer_live_version')).toBe(7);
    expect(sample(text, 'streamrec_trainer_last_look_timestamp_seconds')).toBe(3000);
    // An unknown count (it failed) leaves the last one.
    expect(sample(text, 'streamrec_trainer_behind_interactions')).toBe(30);
  });
});
