/**
 * `npm run bench -- train [--steps 40] [--quick]`
 *
 * Training speed of CCFRec and SASRec at the default config (batch 256) on the active TF.js
 * backend, on Amazon Scientific with the real side information (a fresh rebuild: GloVe-SIF, PCA,
 * RQ-KMeans 4 x 256, in a temporary artifact store): samples/s over timed training steps (after
 * warm-up), seconds for one full epoch over the 34,101 training rows (skipped with --quick:
 * estimated from samples/s), and the peak RSS.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ArtifactStore } from '../infra/artifacts';
import { defaultRebuild } from './_defaultRebuild';
import { initTf, tf } from '../infra/tf';
import { loadDataset } from '../datasets';
import { Random } from '../random';
import {
  AdamW,
  adamWSettings,
  batchIndices,
  createModel,
  leaveOneOutSplit,
  loadArtifactSideInfo,
  measureTrainingThroughput,
  parseTrainerConfig,
  trainStep,
  type SequentialRecommender,
} from '../trainer';
import type { LeaveOneOutData } from '../trainer/data';
import { makeBatch } from '../trainer/data';

function arg(args: string[], name: string, fallback: number): number {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
}

const log = (text: string): void => void process.stderr.write(`[bench train] ${text}\n`);

/** Seconds for one pass over every training batch (training steps only, no evaluation). */
function epochSeconds(model: SequentialRecommender, data: LeaveOneOutData, batchSize: number, maxLength: number, rng: Random): number {
  const train = parseTrainerConfig({ model: { type: model.modelType } }).train;
  const optimizer = new AdamW(model.weights, adamWSettings(train, Math.ceil(data.train.count / batchSize)));
  try {
    const started = performance.now();
    for (const indices of batchIndices(data.train.count, batchSize, rng)) trainStep(model, optimizer, makeBatch(data.train, indices, maxLength), rng);
    return (performance.now() - started) / 1000;
  } finally {
    optimizer.dispose();
  }
}

export async function run(args: string[]): Promise<Record<string, unknown>> {
  const steps = arg(args, 'steps', 40);
  const quick = args.includes('--quick');
  const backend = await initTf();
  log(`backend ${backend.backend} (${backend.reason})`);
  const dir = mkdtempSync(path.join(tmpdir(), 'streamrec-bench-train-'));
  try {
    const dataset = await loadDataset('scientific');
    const store = new ArtifactStore(path.join(dir, 'artifacts'));
    log('rebuilding side information (GloVe-SIF, PCA 64, RQ-KMeans 4 x 256)');
    await defaultRebuild(dataset, store, dir);
    const { sideInfo, itemIds } = await loadArtifactSideInfo(store);
    const data = leaveOneOutSplit(dataset, itemIds);
    const out: Record<string, unknown> = { backend: backend.backend, batch_size: 256, train_examples: data.train.count };
    for (const type of ['sasrec', 'ccfrec'] as const) {
      const config = parseTrainerConfig({ model: { type } });
      const rng = new Random(11);
      const model = createModel(config.model, { itemCount: data.itemCount, sideInfo }, rng.fork());
      try {
        log(`${type}: ${steps} timed steps at batch ${config.train.batchSize}`);
        const t = measureTrainingThroughput(model, data.train, { batchSize: config.train.batchSize, maxHistoryLength: config.model.maxHistoryLength, steps, warmupSteps: 5, rng });
        out[`${type}_samples_per_s`] = Math.round(t.samplesPerSecond);
        out[`${type}_steps_per_s`] = Number(t.stepsPerSecond.toFixed(2));
        if (quick) {
          out[`${type}_epoch_s_estimated`] = Number((data.train.count / t.samplesPerSecond).toFixed(1));
        } else {
          log(`${type}: one full epoch`);
          out[`${type}_epoch_s`] = Number(epochSeconds(model, data, config.train.batchSize, config.model.maxHistoryLength, rng).toFixed(1));
        }
      } finally {
        model.dispose();
      }
    }
    out.tensors_left = tf.memory().numTensors;
    out.peak_rss_mb = Math.round(process.resourceUsage().maxRSS / 1024);
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
