import type { LoadedDataset } from '../datasets';
import { initTf, tf } from '../infra/tf';
import { Random } from '../random';
import { examplesFrom } from './data';
import { evaluateFullRanking } from './evaluate';
import { IncrementalTrainer, MicroEpochConfig, type StreamInteraction } from './incremental';
import { runIncrementalExperiment } from './incrementalExperiment';
import { createModel } from './models';
import type { SequentialRecommender } from './models/contract';
import { TINY, tinyConfig, tinyData } from './testing/fixtures';

beforeAll(async () => {
  await initTf();
});

const config = tinyConfig('sasrec', { train: { epochs: 8 } });
const L = config.model.maxHistoryLength;

function freshModel(seed = 1): SequentialRecommender {
  return createModel(config.model, { itemCount: TINY.items }, new Random(seed));
}

/** Users walking the catalog by `step` (+1 or -1, wrapping) with a few random jumps; 4 events each, user u at minute u. */
function walkWindow(rng: Random, users: number, step: 1 | -1, from: ReadonlyMap<string, number>, startMs: number): StreamInteraction[] {
  const events: StreamInteraction[] = [];
  const at = new Map(from);
  for (let t = 0; t < 4; t++) {
    for (let u = 0; u < users; u++) {
      const user = `u${u}`;
      const prev = at.get(user) ?? 1 + rng.int(TINY.items);
      const item = rng.next() < 0.9 ? ((prev - 1 + step + TINY.items) % TINY.items) + 1 : 1 + rng.int(TINY.items);
      at.set(user, item);
      events.push({ userId: user, item, timestampMs: startMs + (t * users + u) * 60_000 });
    }
  }
  return events;
}

function lastItems(events: readonly StreamInteraction[]): Map<string, number> {
  return new Map(events.map((e) => [e.userId, e.item]));
}

function weightsEqual(a: SequentialRecommender, b: Map<string, { values: Float32Array }>): boolean {
  return [...a.getWeights()].every(([name, w]) => w.values.every((v, i) => v === b.get(name)?.values[i]));
}

describe('IncrementalTrainer (micro-epochs)', () => {
  it('scores the live model on the window before training on it, trains within the step bound, and loses no event', async () => {
    const model = freshModel();
    const micro = MicroEpochConfig.parse({ maxSteps: 6, batchSize: 16, holdoutFraction: 0.3, gateMargin: 1, replayCapacity: 50 });
    const trainer = new IncrementalTrainer({ model, maxHistoryLength: L, micro, train: config.train, rng: new Random(3) });
    const rng = new Random(4);
    try {
      const seed = tinyData();
      trainer.seed([['u0', [1, 2, 3]]], seed.train);
      expect(trainer.replaySize).toBe(50); // bounded by replayCapacity
      const first = walkWindow(rng, 20, 1, new Map(), 0);
      const second = walkWindow(rng, 20, 1, lastItems(first), 10_000_000);

      const r1 = await trainer.microEpoch(first);
      // 20 users, 4 events each; u0 had a history, so its first event is an example too.
      expect(r1.events).toBe(80);
      expect(r1.examples).toBe(61);
      expect(r1.steps).toBeLessThanOrEqual(6);
      expect(r1.steps).toBeGreaterThan(0);
      // 30% of 20 users is 6, but the gate gets at least minHoldout (100) or half the users: 10.
      expect(r1.holdout).toBe(10);
      expect(r1.holdout).toBe(trainer.pendingExamples);
      expect(r1.trained).toBe(r1.examples - r1.holdout);
      expect(r1.accepted).toBe(true); // margin 1: always
      expect(r1.replayed).toBeGreaterThan(0);

      // Prequential: what the weights before the micro-epoch score on the window's examples.
      const before = model.getWeights();
      const history = new Map<string, number[]>([...lastItems(first)].map(([u]) => [u, [...trainer.historyOf(u)]]));
      const expectedRows: Array<{ history: number[]; target: number }> = [];
      for (const e of second) {
        const h = history.get(e.userId) as number[];
        expectedRows.push({ history: h.slice(-L), target: e.item });
        h.push(e.item);
      }
      const expected = await evaluateFullRanking(model, examplesFrom(expectedRows), L, { ks: micro.ks, excludeHistory: false, batchSize: 64 });
      const r2 = await trainer.microEpoch(second);
      expect(r2.prequential?.metrics).toEqual(expected.metrics);
      expect(weightsEqual(model, before)).toBe(false); // it trained after scoring
      // Every example is trained exactly once: the first window's held-out ones in the second.
      expect(r2.trained).toBe(r1.holdout + r2.examples - r2.holdout);
      expect(r2.windowStartMs).toBe(second[0]?.timestampMs);
      expect(r2.windowEndMs).toBe(second.at(-1)?.timestampMs);
      // A window of new users' first events only has no example to hold out: nothing is trained
      // (that would be kept without a gate); the waiting examples wait for the next window.
      const afterSecond = model.getWeights();
      const r3 = await trainer.microEpoch([1, 2, 3].map((i) => ({ userId: `new${i}`, item: i, timestampMs: 20_000_000 + i })));
      expect([r3.examples, r3.holdout, r3.steps, r3.trained]).toEqual([0, 0, 0, 0]);
      expect(trainer.pendingExamples).toBe(r2.holdout);
      expect(weightsEqual(model, afterSecond)).toBe(true);
      const r4 = await trainer.microEpoch(walkWindow(rng, 20, 1, lastItems(second), 30_000_000));
      expect(r4.trained).toBe(r2.holdout + r4.examples - r4.holdout);
    } finally {
      trainer.dispose();
      model.dispose();
    }
  });

  it('keeps the live weights and optimizer when the fine-tuned model fails the gate', async () => {
    const model = freshModel();
    // A learning rate far too high wrecks the model: the gate must refuse it.
    const micro = MicroEpochConfig.parse({ maxSteps: 8, batchSize: 16, holdoutFraction: 0.5, gateMargin: 0, learningRate: 5 });
    const trainer = new IncrementalTrainer({ model, maxHistoryLength: L, micro, train: config.train, rng: new Random(5) });
    const rng = new Random(6);
    try {
      // A model that knows the walk first, so that there is something to lose.
      const good = new IncrementalTrainer({ model, maxHistoryLength: L, micro: MicroEpochConfig.parse({ maxSteps: 60, batchSize: 32, gateMargin: 1, learningRate: 1e-2 }), train: config.train, rng: new Random(7) });
      let at = new Map<string, number>();
      for (let w = 0; w < 3; w++) {
        const events = walkWindow(rng, 30, 1, at, w * 1e7);
        at = lastItems(events);
        await good.microEpoch(events);
      }
      good.dispose();
      const live = model.getWeights();
      const stepBefore = trainer.optimizerState().step;
      const result = await trainer.microEpoch(walkWindow(rng, 30, 1, at, 4e7));
      expect(result.holdout).toBeGreaterThan(0);
      expect(result.steps).toBeGreaterThan(0);
      expect(result.candidateGate).toBeLessThan(result.liveGate);
      expect(result.accepted).toBe(false);
      expect(weightsEqual(model, live)).toBe(true);
      expect(trainer.optimizerState().step).toBe(stepBefore);
      // Nothing of the refused window was learnt: all of it waits for the next one.
      expect(trainer.pendingExamples).toBe(result.trained + result.holdout);
      expect(Object.keys(result.liveHoldout)).toEqual(expect.arrayContaining(['ndcg@10', 'recall@20']));
    } finally {
      trainer.dispose();
      model.dispose();
    }
  });

  it('refuses a gate metric whose k is not evaluated', () => {
    const model = freshModel();
    try {
      expect(() => new IncrementalTrainer({ model, maxHistoryLength: L, micro: MicroEpochConfig.parse({ gateMetric: 'ndcg@5' }), train: config.train, rng: new Random(1) })).toThrow(/ndcg@5 needs its k in micro.ks/);
    } finally {
      model.dispose();
    }
  });
});

/** Walks that go up by 1 until `switchAtMs`, then by 7: the stream changes what comes next. */
function switchingDataset(users: number, length: number, switchAtMs: number): LoadedDataset {
  const rng = new Random(11);
  const sequences = Array.from({ length: users }, (_, u) => {
    const items: number[] = [1 + rng.int(TINY.items)];
    const timestamps: number[] = [u * 1000];
    for (let t = 1; t < length; t++) {
      const ts = t * 100_000 + u * 1000;
      const step = ts < switchAtMs ? 1 : 7;
      const prev = items[t - 1] as number;
      items.push(rng.next() < 0.9 ? ((prev - 1 + step + TINY.items) % TINY.items) + 1 : 1 + rng.int(TINY.items));
      timestamps.push(ts);
    }
    return { userId: `u${u}`, itemIds: items.map((i) => `i${i}`), timestamps };
  });
  return {
    name: 'switching-walk',
    dir: '(memory)',
    items: Array.from({ length: TINY.items }, (_, i) => ({ itemId: `i${i + 1}`, ts: 0, title: `item ${i + 1}` })) as LoadedDataset['items'],
    sequences,
    eventType: 'view' as LoadedDataset['eventType'],
    timestampRule: 'synthetic',
  };
}

describe('the incremental experiment', () => {
  it('on a stream whose pattern changes: micro-epochs follow it (far above the static model), retraining too, at a fraction of its compute', async () => {
    // 15 events per user; the walk turns around at 60% of the time, the first model sees 70% of the events.
    const dataset = switchingDataset(40, 15, 9 * 100_000);
    const seen: string[] = [];
    const before = tf.memory().numTensors;
    const result = await runIncrementalExperiment({
      dataset,
      config: tinyConfig('sasrec', { train: { epochs: 6, batchSize: 32, learningRate: 1e-2 } }),
      micro: { maxSteps: 20, batchSize: 32, learningRate: 1e-2, holdoutFraction: 0.1, gateMargin: 0.05 },
      trainFraction: 0.7,
      windows: 3,
      onWindow: (row) => void seen.push(`${row.method}:${row.window}`),
    });
    expect(tf.memory().numTensors).toBe(before);
    expect(seen).toEqual(['static:0', 'static:1', 'static:2', 'micro:0', 'micro:1', 'micro:2', 'retrain:0', 'retrain:1', 'retrain:2']);
    expect(result.events).toBe(600);
    expect(result.trainEvents).toBe(420);
    expect(result.streamEvents).toBe(180);
    const { static: fixed, micro, retrain } = result.methods;
    expect(fixed?.examples).toBe(180);
    expect(micro?.examples).toBe(180);
    // The first window is scored by the same first model in every method.
    const firstWindow = result.rows.filter((r) => r.window === 0).map((r) => r.metrics['ndcg@10']);
    expect(new Set(firstWindow).size).toBe(1);
    // Later windows: the static model still predicts the old direction.
    const later = (method: string): number => {
      const rows = result.rows.filter((r) => r.method === method && r.window > 0);
      return rows.reduce((s, r) => s + (r.metrics['ndcg@10'] as number) * r.examples, 0) / rows.reduce((s, r) => s + r.examples, 0);
    };
    process.stderr.write(`[incremental] later windows ndcg@10: static ${later('static').toFixed(3)}, micro ${later('micro').toFixed(3)}, retrain ${later('retrain').toFixed(3)}; train s micro ${micro?.trainSeconds.toFixed(2)}, retrain ${retrain?.trainSeconds.toFixed(2)}\n`);
    expect(later('micro')).toBeGreaterThan(Math.max(2 * later('static'), later('static') + 0.1));
    expect(later('retrain')).toBeGreaterThan(Math.max(2 * later('static'), later('static') + 0.1));
    expect(micro?.trainSeconds).toBeGreaterThan(0);
    expect(micro?.trainSeconds as number).toBeLessThan(retrain?.trainSeconds as number);
    // Examples trained through: micro-epochs' steps of 32; each retrain's epochs over everything before its window.
    expect(micro?.trainSamples).toBe(result.rows.filter((r) => r.method === 'micro').reduce((n, r) => n + r.steps * 32, 0));
    expect(micro?.trainSamples as number).toBeLessThan(retrain?.trainSamples as number);
    expect(result.rows.filter((r) => r.method === 'micro').every((r) => r.micro !== undefined && r.steps <= 20)).toBe(true);
  }, 120_000);

  it('with retrainOn all, each retrain trains on every earlier interaction (each user\'s last two included) for the first model\'s best epoch count', async () => {
    // 10 events per user, user u's event t at t * 100 s + u s: a window bound is a time.
    const users = 20;
    const dataset = switchingDataset(users, 10, 1e12);
    const trainConfig = tinyConfig('sasrec', { train: { epochs: 3, batchSize: 32 } });
    const runs = await Promise.all(
      (['split', 'all'] as const).map(async (retrainOn) => ({ retrainOn, result: await runIncrementalExperiment({ dataset, config: trainConfig, methods: ['retrain'], trainFraction: 0.5, windows: 2, retrainOn }) })),
    );
    for (const { retrainOn, result } of runs) {
      const row = result.rows.find((r) => r.method === 'retrain' && r.window === 1);
      // Before window 1: 150 of 200 events, 7 or 8 per user (the 8th of users 0..9).
      const before = 150;
      const perUser = Array.from({ length: users }, (_, u) => (u < before - 7 * users ? 8 : 7));
      expect(perUser.reduce((a, b) => a + b, 0)).toBe(before);
      // Examples (every event after a user's first) trained through, per epoch: `all` every one, `split` all but each user's last two.
      const all = perUser.reduce((n, c) => n + c - 1, 0);
      if (retrainOn === 'all') expect(row?.trainSamples).toBe((result.firstModelBestEpoch + 1) * all);
      else expect((row?.trainSamples as number) % (all - 2 * users)).toBe(0);
    }
  }, 120_000);

  it('refuses settings that cannot make an experiment', async () => {
    const dataset = switchingDataset(5, 4, 1e9);
    await expect(runIncrementalExperiment({ dataset, config: tinyConfig('sasrec'), trainFraction: 1 })).rejects.toThrow(/trainFraction must be in \(0, 1\), got 1/);
    await expect(runIncrementalExperiment({ dataset, config: tinyConfig('sasrec'), windows: 0 })).rejects.toThrow(/windows must be a positive integer, got 0/);
    await expect(runIncrementalExperiment({ dataset, config: tinyConfig('sasrec'), windows: 50 })).rejects.toThrow(/20 interactions cannot give a first model and 50 windows/);
    await expect(runIncrementalExperiment({ dataset, config: tinyConfig('ccfrec') })).rejects.toThrow(/needs the side information/);
  });
});
