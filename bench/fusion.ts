/**
 * `npm run bench -- fusion --checkpoint <id|dir> --artifacts <dir> [--last 2] [--weights 0,0.1,...]`:
 * a trained model's ranking fused with the text prior (trainer/textPrior.ts): score = model cosine
 * + w x text prior, for each weight w on the validation and the test split. The weight is chosen by
 * validation NDCG@10 (the trainer's default validation metric) and the test metrics at that weight
 * are reported beside the model alone (w = 0). Full ranking, history items rankable, the trainer's
 * rank rule. `--artifacts` is the store holding the side information the checkpoint names.
 */
import { initTf } from '../infra/tf';
import { ArtifactStore } from '../infra/artifacts';
import { loadDataset } from '../ingest/datasets';
import { TextPrior, checkpointInputs, evaluateTextPriorWeights, leaveOneOutSplit, loadCheckpoint, tuneTextPrior } from '../trainer';
import { numberFlag, parseFlags } from './_flags';

const KNOWN = new Set(['checkpoint', 'artifacts', 'dataset', 'last', 'weights', 'batch']);
const KS = [5, 10, 20, 50];
const DEFAULT_WEIGHTS = [0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1, 1.5, 2, 4];

export async function run(args: string[]): Promise<Record<string, unknown>> {
  const flags = parseFlags(args, KNOWN);
  const checkpoint = flags.get('checkpoint');
  const artifacts = flags.get('artifacts');
  if (!checkpoint || !artifacts) throw new Error('fusion needs --checkpoint <id|dir> and --artifacts <dir> (the store with its side information)');
  const last = numberFlag(flags, 'last') ?? 2;
  const given = flags.has('weights') ? (flags.get('weights') as string).split(',').map(Number) : DEFAULT_WEIGHTS;
  if (given.some((w) => !Number.isFinite(w) || w < 0)) throw new Error(`--weights must be numbers >= 0, got ${flags.get('weights')}`);
  const weights = given; // tuneTextPrior adds 0, the model alone
  const backend = await initTf();
  const store = new ArtifactStore(artifacts);
  const { sideInfo, itemIds } = await checkpointInputs(store, checkpoint);
  if (!sideInfo || !itemIds) throw new Error(`checkpoint ${checkpoint} names no text embeddings (a SASRec checkpoint?); the text prior needs them`);
  const { model, settings, artifact } = await loadCheckpoint(store, checkpoint, { sideInfo, itemCount: itemIds.itemCount });
  const prior = new TextPrior(sideInfo, { weight: 0, lastItems: last });
  try {
    const data = leaveOneOutSplit(await loadDataset(flags.get('dataset') ?? 'scientific'), itemIds);
    const maxLength = settings.model.maxHistoryLength as number;
    const batchSize = numberFlag(flags, 'batch') ?? 256;
    const started = performance.now();
    const options = { ks: KS, excludeHistory: false, batchSize };
    // The choice is the trainer's (tuneTextPrior, as `--text-prior` in training); the test curve is for the report.
    const tuned = await tuneTextPrior(model, prior, data, maxLength, weights, 'ndcg@10', options);
    const tried = tuned.curve.map((c) => c.weight);
    const valid = (await evaluateTextPriorWeights(model, prior, data.valid, maxLength, tried, options)).map((r) => r.metrics);
    const test = (await evaluateTextPriorWeights(model, prior, data.test, maxLength, tried, options)).map((r) => r.metrics);
    const round = (m: Record<string, number> | undefined): Record<string, number> =>
      Object.fromEntries(['recall@5', 'recall@10', 'recall@20', 'recall@50', 'ndcg@5', 'ndcg@10', 'ndcg@20', 'ndcg@50'].map((k) => [k, Number((m?.[k] ?? 0).toFixed(4))]));
    const curve = tried.map((w, i) => ({
      weight: w,
      valid_r10: round(valid[i])['recall@10'],
      valid_n10: round(valid[i])['ndcg@10'],
      test_r10: round(test[i])['recall@10'],
      test_n10: round(test[i])['ndcg@10'],
    }));
    for (const c of curve) process.stderr.write(`w ${c.weight}: valid R@10 ${c.valid_r10} N@10 ${c.valid_n10} | test R@10 ${c.test_r10} N@10 ${c.test_n10}\n`);
    return {
      checkpoint: artifact.id,
      model: settings.modelType,
      backend: backend.backend,
      last_items: last,
      rule: 'score = model cosine + w x (mean text vector of the last items . item text vector), query items 0; w by valid NDCG@10; history rankable',
      chosen_weight: tuned.weight,
      model_alone: { valid: round(valid[0]), test: round(test[0]) },
      fused: { valid: round(tuned.valid.metrics), test: round(tuned.test.metrics) },
      curve,
      seconds: Number(((performance.now() - started) / 1000).toFixed(1)),
    };
  } finally {
    prior.dispose();
    model.dispose();
  }
}
