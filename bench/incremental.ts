/**
 * `npm run bench -- incremental [--dataset ml-100k] [--model sasrec] [--windows 4] [--train-fraction 0.8]
 *   [--epochs 5] [--max-history 20] [--patience 3] [--micro-steps 160] [--micro-lr 3e-4] [--micro-replay 1]
 *   [--micro-batch 128] [--micro-passes 2]
 *   [--methods static,micro,retrain] [--retrain-on split|all]`
 *
 * The incremental experiment (trainer/incrementalExperiment.ts, `streamrec experiment incremental`):
 * the first `--train-fraction` of the dataset's interactions in time order train the first model;
 * the rest is streamed in `--windows` windows; on every window, before training on it, the same
 * prequential Recall/NDCG@10 of the static model, micro-epoch fine-tuning and a full retrain with
 * the first model's settings on everything before the window. Training seconds per method.
 *
 * The defaults keep a run under an hour on 2 cores: SASRec with 20-item histories and at most 5
 * epochs (early stopping, patience 3) for the first model and each of the 3 retrains; micro-epochs
 * of at most 160 steps of 128 examples. Goal (issue 18): micro within 2% of retrain on NDCG@10 at
 * <= 10% of its compute, and above static.
 *
 * Last stdout line: `{"dataset", "static": {"ndcg@10", "recall@10"}, "micro": {..., "train_s", "train_samples"},
 * "retrain": {..., "train_s", "train_samples"}, "micro_vs_retrain_ndcg", "micro_compute_share",
 * "micro_sample_share", ...}` (the sample share is the compute share without the machine's load).
 */
import { ConfigError } from '../errors';
import { AppConfig, runIncrementalJob, trainerConfigFromFlags } from '../jobs';
import { setLogLevel } from '../logging';
import { INCREMENTAL_METHODS, type IncrementalMethod } from '../trainer';
import { numberFlag, parseFlags } from './_flags';
import { retrainOnFlag } from '../cli/flags';

const KNOWN = new Set(['dataset', 'model', 'windows', 'train-fraction', 'epochs', 'max-history', 'patience', 'micro-steps', 'micro-lr', 'micro-replay', 'micro-batch', 'micro-passes', 'methods', 'seed', 'retrain-on']);
const log = (text: string): void => void process.stderr.write(`[bench incremental ${new Date().toISOString().slice(11, 19)}] ${text}\n`);

export async function run(args: string[]): Promise<Record<string, unknown>> {
  setLogLevel(process.env.STREAMREC_LOG_LEVEL ?? 'warn');
  const flags = parseFlags(args, KNOWN);
  const model = flags.get('model') ?? 'sasrec';
  if (model !== 'sasrec' && model !== 'ccfrec') throw new ConfigError(`--model: expected sasrec or ccfrec, got ${JSON.stringify(model)}`);
  const methods = (flags.get('methods') ?? INCREMENTAL_METHODS.join(',')).split(',').map((m) => m.trim());
  for (const m of methods) if (!(INCREMENTAL_METHODS as readonly string[]).includes(m)) throw new ConfigError(`--methods: expected some of ${INCREMENTAL_METHODS.join(', ')}, got ${JSON.stringify(m)}`);
  const config = AppConfig.parse({});
  const trainer = trainerConfigFromFlags(config.trainer, model, {
    epochs: flags.get('epochs') ?? '5',
    'max-history': flags.get('max-history') ?? '20',
    patience: flags.get('patience') ?? '3',
    warmup: '100',
    batch: '256',
    seed: flags.get('seed') ?? '2020',
  });
  const retrainOn = retrainOnFlag(flags.get('retrain-on') ?? 'split');
  const dataset = flags.get('dataset') ?? 'ml-100k';
  const windows = numberFlag(flags, 'windows') ?? 4;
  const started = performance.now();
  const { result, summary } = await runIncrementalJob({
    config,
    trainer,
    source: { kind: 'dataset', dataset },
    windows,
    trainFraction: numberFlag(flags, 'train-fraction') ?? 0.8,
    methods: methods as IncrementalMethod[],
    retrainOn,
    micro: {
      maxSteps: numberFlag(flags, 'micro-steps') ?? 160,
      ...(flags.has('micro-lr') ? { learningRate: numberFlag(flags, 'micro-lr') } : {}),
      ...(flags.has('micro-replay') ? { replayRatio: numberFlag(flags, 'micro-replay') } : {}),
      ...(flags.has('micro-batch') ? { batchSize: numberFlag(flags, 'micro-batch') } : {}),
      ...(flags.has('micro-passes') ? { passes: numberFlag(flags, 'micro-passes') } : {}),
    },
    writeRows: false,
    onWindow: (row) =>
      log(`${row.method} window ${row.window + 1}/${windows}: ${row.examples} examples, ndcg@10 ${(row.metrics['ndcg@10'] ?? Number.NaN).toFixed(4)}, recall@10 ${(row.metrics['recall@10'] ?? Number.NaN).toFixed(4)}, training ${row.trainSeconds.toFixed(1)} s${row.micro ? `, ${row.micro.steps} steps, gate ${row.micro.accepted ? 'passed' : 'refused'} (${row.micro.liveGate.toFixed(4)} -> ${row.micro.candidateGate.toFixed(4)})` : ''}`),
  });
  log(`first model: ${result.trainEvents} interactions, ${result.firstModelEpochs} epochs, ${result.firstModelSeconds.toFixed(0)} s; total ${((performance.now() - started) / 1000).toFixed(0)} s`);
  return { ...summary, first_model_s: Math.round(result.firstModelSeconds), first_model_epochs: result.firstModelEpochs, settings: { epochs: trainer.train.epochs, max_history: trainer.model.maxHistoryLength, micro_steps: numberFlag(flags, 'micro-steps') ?? 160, retrain_on: retrainOn } };
}
