/**
 * `npm run bench -- text [options]`: how much the item texts alone predict the next item, with no
 * training. Every item is scored exactly as the trainer's text prior scores it (trainer/textPrior.ts
 * `TextPrior.scores`): the query is the last `--last` distinct history items' text vectors (the
 * fields' whitened embeddings side by side, L2-normalised), a candidate's score is its cosine to
 * them pooled (`--pooling`: max = the nearest query item, the default; mean = the mean cosine),
 * and the query items themselves score 0. Every item is rankable, as in the models' evaluation,
 * and ranked with trainer/'s rank rule (`rankTargets`: ties count against the target) and metrics.
 * A seconds-long check of a text encoder or field layout before an hour of training, and the
 * reference any text-based recommender should beat.
 *
 *   npm run bench -- text [--dataset scientific] [--text merged|fields] [--encoder glove-sif|tfidf-lsa|onnx]
 *     [--pca 64] [--whiten true|false] [--last 1] [--pooling max|mean] [--seed 7]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Catalog, FeaturesConfig, runFeaturesJobFromConfig, type Matrix } from '../features';
import { ArtifactStore } from '../infra/artifacts';
import { initTf, tf } from '../infra/tf';
import { loadDataset } from '../datasets';
import { Random } from '../random';
import { MetricAccumulator, TextPrior, batchIndices, examplesFrom, makeBatch, parsePoolingList, rankTargets, type TextFieldTable, type TextPriorPooling } from '../trainer';
import { numberFlag, parseFlags } from './_flags';

const KNOWN = new Set(['dataset', 'text', 'encoder', 'pca', 'whiten', 'last', 'pooling', 'seed']);
const KS = [5, 10, 20, 50];
const BATCH = 256;

interface Row {
  readonly history: readonly string[];
  readonly target: string;
}

/** Metrics of the text prior's full ranking over `rows` (dense ids 1..N from `denseOf`), whole histories as the query source. */
async function evaluate(rows: readonly Row[], denseOf: (itemId: string) => number, prior: TextPrior): Promise<Record<string, number>> {
  const acc = new MetricAccumulator(KS);
  const examples = examplesFrom(rows.map((r) => ({ history: r.history.map(denseOf), target: denseOf(r.target) })));
  const maxLength = rows.reduce((m, r) => Math.max(m, r.history.length), 1);
  for (const indices of batchIndices(examples.count, BATCH)) {
    const batch = makeBatch(examples, indices, maxLength);
    const ranks = tf.tidy(() => rankTargets(prior.scores(batch), batch.targets)); // [B]
    const values = await ranks.data();
    ranks.dispose();
    for (const rank of values) acc.add(rank);
  }
  return acc.result();
}

export async function run(args: string[]): Promise<Record<string, unknown>> {
  const flags = parseFlags(args, KNOWN);
  const text = flags.get('text') ?? 'merged';
  if (text !== 'merged' && text !== 'fields') throw new Error(`--text must be merged or fields, got ${JSON.stringify(text)}`);
  const whiten = flags.get('whiten') ?? 'true';
  if (whiten !== 'true' && whiten !== 'false') throw new Error(`--whiten must be true or false, got ${JSON.stringify(whiten)}`);
  const last = numberFlag(flags, 'last') ?? 1;
  if (!Number.isInteger(last) || last < 1) throw new Error(`--last must be a positive integer, got ${last}`);
  const [pooling] = parsePoolingList('--pooling', flags.get('pooling') ?? 'max') as [TextPriorPooling];
  await initTf();
  const dataset = await loadDataset(flags.get('dataset') ?? 'scientific', { text });
  if (!dataset.split) throw new Error(`${dataset.name} has no shipped valid/test split (the text benchmark needs one)`);
  const features = FeaturesConfig.parse({
    ...(flags.has('encoder') ? { encoder: flags.get('encoder') } : {}),
    ...(flags.has('pca') ? { pcaDims: numberFlag(flags, 'pca') } : {}),
    whiten: whiten === 'true',
  });

  const catalog = new Catalog();
  await catalog.applyAll(dataset.items);
  const scratch = mkdtempSync(path.join(tmpdir(), 'streamrec-bench-text-'));
  try {
    const started = performance.now();
    const embedded = await runFeaturesJobFromConfig(catalog, new ArtifactStore(scratch), features, new Random(numberFlag(flags, 'seed') ?? 7));
    // Matrix row i - 1 is dense id i; the prior's tables have a zero padding row 0.
    const textFields: TextFieldTable[] = embedded.fields.map((field) => {
      const m = embedded.matrices.get(field) as Matrix;
      const table = new Float32Array((m.rows + 1) * m.cols);
      table.set(m.data, m.cols);
      return { name: field, dims: m.cols, table };
    });
    const embedSeconds = (performance.now() - started) / 1000;
    const denseOf = (itemId: string): number => {
      const id = catalog.registry.idOf(itemId);
      if (id === undefined) throw new Error(`item ${itemId} of the split is not in the catalog`);
      return id;
    };
    const prior = new TextPrior({ itemCount: embedded.rows, textFields }, { weight: 1, lastItems: last, pooling });
    let valid: Record<string, number>;
    let test: Record<string, number>;
    try {
      valid = await evaluate(dataset.split.valid, denseOf, prior);
      test = await evaluate(dataset.split.test, denseOf, prior);
    } finally {
      prior.dispose();
    }
    const round = (m: Record<string, number>): Record<string, number> =>
      Object.fromEntries(['recall@5', 'recall@10', 'recall@50', 'ndcg@5', 'ndcg@10', 'ndcg@50'].map((k) => [k, Number((m[k] as number).toFixed(4))]));
    return {
      dataset: dataset.name,
      text,
      encoder: features.encoder,
      fields: embedded.fields,
      dims: textFields.reduce((d, f) => d + f.dims, 0),
      whiten: features.whiten,
      last,
      pooling,
      rule:
        'the trainer\'s text prior: every item scored by its cosine to the last distinct history items\' text vectors, pooled (max or mean), ' +
        'the query items scored 0; every item rankable; ties and NaN count against the target',
      embed_seconds: Number(embedSeconds.toFixed(1)),
      seconds: Number(((performance.now() - started) / 1000).toFixed(1)),
      valid: round(valid),
      test: round(test),
    };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}
