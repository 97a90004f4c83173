/**
 * `npm run bench -- fusion --checkpoint <id|dir> --artifacts <dir> [--last 2,5,10] [--weights 0.1,...] [--pooling max,mean]`:
 * a trained model's ranking fused with the text prior (trainer/textPrior.ts): score = model cosine
 * + w x text prior, for every pooling, query length (`--last`) and weight w, on the validation and the test
 * split. The prior is chosen as training chooses it (tuneTextPrior: validation NDCG@10, the model
 * alone competing) and its test metrics are reported beside the model alone. Full ranking, history
 * items rankable, the trainer's rank rule. `--artifacts` is the store holding the side information
 * the checkpoint names.
 */
import { ConfigError } from '../errors';
import { initTf } from '../infra/tf';
import { ArtifactStore } from '../infra/artifacts';
import { loadDataset } from '../datasets';
import { TextPrior, checkpointInputs, evaluateFusedRankings, leaveOneOutSplit, loadCheckpoint, parseNumberList, parsePoolingList, tuneTextPrior, type FusedScoring } from '../trainer';
import { numberFlag, parseFlags } from './_flags';

const KNOWN = new Set(['checkpoint', 'artifacts', 'dataset', 'last', 'weights', 'pooling', 'batch']);
const KS = [5, 10, 20, 50];
const DEFAULT_WEIGHTS = [0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 1.5, 2];
const DEFAULT_LAST = [1, 2, 3, 5, 8];

export async function run(args: string[]): Promise<Record<string, unknown>> {
  const flags = parseFlags(args, KNOWN);
  const checkpoint = flags.get('checkpoint');
  const artifacts = flags.get('artifacts');
  if (!checkpoint || !artifacts) throw new ConfigError('fusion needs --checkpoint <id|dir> and --artifacts <dir> (the store with its side information)');
  const lastItems = flags.has('last') ? parseNumberList('--last', flags.get('last') as string, { integer: true, min: 1 }) : DEFAULT_LAST;
  const weights = flags.has('weights') ? parseNumberList('--weights', flags.get('weights') as string) : DEFAULT_WEIGHTS;
  const pooling = parsePoolingList('--pooling', flags.get('pooling') ?? 'max,mean');
  const backend = await initTf();
  const store = new ArtifactStore(artifacts);
  const { sideInfo, text, itemIds } = await checkpointInputs(store, checkpoint);
  if (!text || !itemIds) throw new ConfigError(`checkpoint ${checkpoint} names no text embeddings (a SASRec checkpoint trained without a text prior?); the text prior needs them`);
  const { model, settings, artifact } = await loadCheckpoint(store, checkpoint, { itemCount: itemIds.itemCount, ...(sideInfo ? { sideInfo } : {}) });
  const priors = new Map<string, TextPrior>();
  try {
    const data = leaveOneOutSplit(await loadDataset(flags.get('dataset') ?? 'scientific'), itemIds);
    const maxLength = settings.model.maxHistoryLength;
    const options = { ks: KS, excludeHistory: false, batchSize: numberFlag(flags, 'batch') ?? 256 };
    const started = performance.now();
    // The choice and the validation grid are the trainer's (as `train --text-prior`); the test grid is for the report.
    const tuned = await tuneTextPrior(model, text, data, maxLength, { weights, lastItems, pooling }, 'ndcg@10', options);
    const scorings: FusedScoring[] = tuned.curve.map((c) => {
      if (c.pooling === undefined) return { weight: 0 };
      const key = `${c.pooling}/${c.lastItems}`;
      if (!priors.has(key)) priors.set(key, new TextPrior(text, { weight: 0, lastItems: c.lastItems, pooling: c.pooling }));
      return { prior: priors.get(key) as TextPrior, weight: c.weight };
    });
    const valid = tuned.curve.map((c) => c.metrics);
    const test = (await evaluateFusedRankings(model, scorings, data.test, maxLength, options)).map((r) => r.metrics);
    const round = (m: Record<string, number> | undefined): Record<string, number> =>
      Object.fromEntries(['recall@5', 'recall@10', 'recall@20', 'recall@50', 'ndcg@5', 'ndcg@10', 'ndcg@20', 'ndcg@50'].map((k) => [k, Number((m?.[k] ?? 0).toFixed(4))]));
    const grid = tuned.curve.map((c, i) => ({
      pooling: c.pooling ?? 'none',
      last: c.lastItems,
      weight: c.weight,
      valid_r10: round(valid[i])['recall@10'],
      valid_n10: round(valid[i])['ndcg@10'],
      test_r10: round(test[i])['recall@10'],
      test_n10: round(test[i])['ndcg@10'],
    }));
    for (const g of grid) process.stderr.write(`${g.pooling} last ${g.last} w ${g.weight}: valid R@10 ${g.valid_r10} N@10 ${g.valid_n10} | test R@10 ${g.test_r10} N@10 ${g.test_n10}\n`);
    return {
      checkpoint: artifact.id,
      model: settings.modelType,
      backend: backend.backend,
      rule: 'score = model cosine + w x (max or mean cosine of the item text vector to the last items), query items 0; (pooling, last, w) by valid NDCG@10; history rankable',
      chosen: { weight: tuned.weight, last_items: tuned.lastItems, pooling: tuned.pooling ?? 'none' },
      model_alone: { valid: round(valid[0]), test: round(test[0]) },
      fused: { valid: round(tuned.valid.metrics), test: round(tuned.test.metrics) },
      grid,
      seconds: Number(((performance.now() - started) / 1000).toFixed(1)),
    };
  } finally {
    for (const prior of priors.values()) prior.dispose();
    model.dispose();
  }
}
