/**
 * `npm run bench -- onnx [--checkpoint <id|dir> --artifacts <dir>] [--users 1000] [--threads 0]
 *   [--rows-per-run 32] [--model ccfrec] [--train-seconds 60]`
 *
 * The two user-encoder engines of serving/onnx on Amazon Scientific: the TF.js model and its
 * ONNX export in onnxruntime-node. Parity on the first `--users` test histories of the shipped
 * split (max abs difference of the L2-normalised user vectors, and how many users get the same
 * top-10 over the model's item table, padding excluded, and where an order differs the largest
 * TF.js score gap between the items ranked differently: a tie at float precision, or not), then
 * user vectors/s of both engines at batch 1 and batch 256, and which is faster (serving's `auto`
 * engine is ONNX).
 *
 * With `--checkpoint` (and the `--artifacts` store it lives in) the checkpoint is loaded as
 * serving loads it (loadServableModel). Without, a fresh default rebuild (GloVe-SIF, PCA 64,
 * RQ-KMeans 4 x 256) and `--model` at its default settings trained for `--train-seconds` on
 * random training batches (no evaluation) in a temporary store: weights that are not the init,
 * not a good model. The ONNX graph is written to the store as an `onnx_encoder` artifact
 * (`--threads`: ORT intra-op threads, 0 = its default; `--rows-per-run`: rows of a batch, sorted
 * by length, per session run).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ConfigError } from '../errors';
import { loadDataset } from '../datasets';
import { ArtifactStore } from '../infra/artifacts';
import { initTf, tf } from '../infra/tf';
import { loadServableModel, type ServableModel } from '../jobs';
import { Random } from '../random';
import { DEFAULT_ROWS_PER_RUN, OnnxUserEncoder, TfjsUserEncoder, compareUserEncoders, writeOnnxEncoder } from '../serving';
import { AdamW, adamWSettings, batchIndices, createModel, leaveOneOutSplit, loadArtifactSideInfo, makeBatch, parseTrainerConfig, saveCheckpoint, trainStep, type SequenceBatch, type SequenceExamples } from '../trainer';
import { defaultRebuild } from './_defaultRebuild';
import { numberFlag, parseFlags } from './_flags';
import { throughput } from './_measure';

const KNOWN = new Set(['checkpoint', 'artifacts', 'users', 'threads', 'rows-per-run', 'model', 'train-seconds']);
const log = (text: string): void => void process.stderr.write(`[bench onnx ${new Date().toISOString().slice(11, 19)}] ${text}\n`);

/** Trains `type` at its default settings for `seconds` on random batches and saves it; returns the checkpoint id. */
async function trainBriefly(store: ArtifactStore, type: 'ccfrec' | 'sasrec', seconds: number): Promise<string> {
  const dataset = await loadDataset('scientific');
  const { sideInfo, itemIds } = await loadArtifactSideInfo(store);
  const data = leaveOneOutSplit(dataset, itemIds);
  const config = parseTrainerConfig({ model: { type } });
  const rng = new Random(5);
  const model = createModel(config.model, { itemCount: data.itemCount, sideInfo }, rng.fork());
  const t = config.train;
  const optimizer = new AdamW(model.weights, { ...adamWSettings(t, 1), warmupSteps: 0, schedule: 'constant' });
  try {
    const started = performance.now();
    let steps = 0;
    while ((performance.now() - started) / 1000 < seconds) {
      for (const indices of batchIndices(data.train.count, t.batchSize, rng)) {
        trainStep(model, optimizer, makeBatch(data.train, indices, config.model.maxHistoryLength), rng);
        if (++steps % 50 === 0) log(`${type}: ${steps} steps`);
        if ((performance.now() - started) / 1000 >= seconds) break;
      }
    }
    log(`${type}: ${steps} training steps in ${seconds} s`);
    const saved = await saveCheckpoint(store, model, {
      sideInfo,
      dataWatermark: { dataset: dataset.name, protocol: data.protocol, latestEventMs: data.watermarkMs, trainExamples: steps * t.batchSize },
      backend: tf.getBackend(),
      runId: 'bench-onnx',
      epoch: 0,
      job: 'npm run bench -- onnx',
    });
    return saved.id;
  } finally {
    optimizer.dispose();
    model.dispose();
  }
}

/** The first `count` test histories of Scientific, in the servable model's dense ids. */
async function testUsers(servable: ServableModel, count: number): Promise<SequenceExamples> {
  const dataset = await loadDataset('scientific');
  const test = leaveOneOutSplit(dataset, servable.items).test;
  const n = Math.min(count, test.count);
  const end = test.offsets[n] as number;
  return { count: n, offsets: test.offsets.slice(0, n + 1), items: test.items.slice(0, end), targets: test.targets.slice(0, n) };
}

function batchesOf(users: SequenceExamples, size: number, maxLength: number): SequenceBatch[] {
  const out: SequenceBatch[] = [];
  for (let s = 0; s < users.count; s += size) out.push(makeBatch(users, Int32Array.from({ length: Math.min(size, users.count - s) }, (_, i) => s + i), maxLength));
  return out;
}

export async function run(args: string[]): Promise<Record<string, unknown>> {
  const flags = parseFlags(args, KNOWN);
  const userCount = numberFlag(flags, 'users') ?? 1000;
  const threads = numberFlag(flags, 'threads') ?? 0;
  const rowsPerRun = numberFlag(flags, 'rows-per-run') ?? DEFAULT_ROWS_PER_RUN;
  const trainSeconds = numberFlag(flags, 'train-seconds') ?? 60;
  const modelType = flags.get('model') ?? 'ccfrec';
  if (modelType !== 'ccfrec' && modelType !== 'sasrec') throw new ConfigError(`--model must be ccfrec or sasrec, got ${JSON.stringify(modelType)}`);
  if (flags.has('checkpoint') !== flags.has('artifacts')) throw new ConfigError('--checkpoint and --artifacts go together (the store the checkpoint and its side information live in)');
  const backend = await initTf();
  log(`TF.js backend ${backend.backend}`);

  const scratch = flags.has('artifacts') ? undefined : mkdtempSync(path.join(tmpdir(), 'streamrec-bench-onnx-'));
  const store = new ArtifactStore(flags.get('artifacts') ?? path.join(scratch as string, 'artifacts'));
  let servable: ServableModel | undefined;
  try {
    let checkpoint = flags.get('checkpoint');
    if (checkpoint === undefined) {
      log('rebuilding side information with the defaults (GloVe-SIF, PCA 64, RQ-KMeans 4 x 256)');
      await defaultRebuild(await loadDataset('scientific'), store, scratch as string);
      checkpoint = await trainBriefly(store, modelType, trainSeconds);
    }
    servable = await loadServableModel(store, checkpoint);
    const H = servable.model.hiddenSize;
    const L = servable.maxHistoryLength;

    let started = performance.now();
    const artifact = await writeOnnxEncoder(store, servable, { job: 'npm run bench -- onnx' });
    const exportSeconds = (performance.now() - started) / 1000;
    log(`exported ${artifact.id} in ${exportSeconds.toFixed(2)} s`);
    started = performance.now();
    const onnxEngine = await OnnxUserEncoder.open(store, artifact.id, { threads, rowsPerRun });
    const sessionSeconds = (performance.now() - started) / 1000;
    const tfjsEngine = new TfjsUserEncoder(servable.model);
    try {
      const users = await testUsers(servable, userCount);
      const batches256 = batchesOf(users, 256, L);
      const table = servable.model.itemTable(); // [N + 1, H]
      const parity = await compareUserEncoders(onnxEngine, tfjsEngine, batches256, table);
      table.dispose();
      const diff = parity.maxAbsDiff;
      log(
        `parity on ${parity.users} users: max abs diff ${diff.toExponential(2)}, same top-10 ${parity.sameOrder}/${parity.users} ` +
          `(same set ${parity.sameSet}, same up to ties within ${parity.tie} ${parity.sameUpToTies}; largest score gap between items ranked in another order ${parity.largestSwapGap.toExponential(2)})`,
      );
      const tensorsBefore = tf.memory().numTensors;

      const batches1 = batchesOf(users, 1, L);
      const speed: Record<string, number> = {};
      for (const [name, engine] of [['tfjs', tfjsEngine], ['onnx', onnxEngine]] as const) {
        speed[`${name}_batch1_per_s`] = Math.round(await throughput(engine, batches1, 3));
        speed[`${name}_batch256_per_s`] = Math.round(await throughput(engine, batches256, 3));
        log(`${name}: ${speed[`${name}_batch1_per_s`]} user vectors/s at batch 1, ${speed[`${name}_batch256_per_s`]} at batch 256`);
      }
      const ratio = (k: string): number => Number(((speed[`onnx_${k}_per_s`] as number) / (speed[`tfjs_${k}_per_s`] as number)).toFixed(2));
      return {
        checkpoint: servable.checkpointId,
        model: servable.modelType,
        trained: flags.has('checkpoint') ? 'given checkpoint' : `${trainSeconds} s on random batches (default settings)`,
        onnx_artifact: artifact.id,
        tf_backend: backend.backend,
        ort_threads: threads || 'default',
        rows_per_run: rowsPerRun,
        hidden: H,
        max_history: L,
        layers: servable.config.nLayers,
        items: servable.model.itemCount,
        users: users.count,
        max_abs_diff: diff,
        within_1e4: diff <= 1e-4,
        top10_same_order: parity.sameOrder,
        top10_same_set: parity.sameSet,
        top10_same_up_to_ties: parity.sameUpToTies,
        top10_swap_score_gap: parity.largestSwapGap,
        export_s: Number(exportSeconds.toFixed(2)),
        session_s: Number(sessionSeconds.toFixed(3)),
        ...speed,
        onnx_over_tfjs_batch1: ratio('batch1'),
        onnx_over_tfjs_batch256: ratio('batch256'),
        faster_batch1: ratio('batch1') >= 1 ? 'onnx' : 'tfjs',
        faster_batch256: ratio('batch256') >= 1 ? 'onnx' : 'tfjs',
        tfjs_tensor_growth: tf.memory().numTensors - tensorsBefore,
      };
    } finally {
      await onnxEngine.dispose();
    }
  } finally {
    servable?.dispose();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  }
}
