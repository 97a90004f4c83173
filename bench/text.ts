/**
 * `npm run bench -- text [options]`: how much the item texts alone predict the next item, with no
 * training. Each user's query is the last `--last` history items' text vectors (the fields'
 * whitened embeddings side by side, L2-normalised); every item is ranked by its cosine to them,
 * pooled as the text prior pools (`--pooling`: max = the nearest query item, the default; mean =
 * the mean cosine), the query items themselves excluded (unless one is the target), with the full-ranking rule and
 * metrics of trainer/ (ties by lower id). A seconds-long check of a text encoder or field layout before an hour of training,
 * and the reference any text-based recommender should beat.
 *
 *   npm run bench -- text [--dataset scientific] [--text merged|fields] [--encoder glove-sif|tfidf-lsa|onnx]
 *     [--pca 64] [--whiten true|false] [--last 1] [--pooling max|mean] [--seed 7]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Catalog, FeaturesConfig, runFeaturesJobFromConfig } from '../features';
import { ArtifactStore } from '../infra/artifacts';
import { l2NormalizeRows } from '../infra/matrix';
import { loadDataset } from '../datasets';
import { concatFields } from '../quantizer/rebuild';
import { Random } from '../random';
import { parsePoolingList, type TextPriorPooling } from '../trainer';
import { MetricAccumulator, rankOfTarget } from '../trainer/metrics';
import { numberFlag, parseFlags } from './_flags';

const KNOWN = new Set(['dataset', 'text', 'encoder', 'pca', 'whiten', 'last', 'pooling', 'seed']);
const KS = [5, 10, 20, 50];

interface Row {
  readonly history: readonly string[];
  readonly target: string;
}

/**
 * Metrics of the text-nearest-neighbour ranking over `rows`, with trainer/'s rank rule
 * ({@link rankOfTarget}: dense ids 1..N, 0 = padding). `vectors` `[N, D]`: L2-normalised rows,
 * row i - 1 for dense id i.
 */
function evaluate(rows: readonly Row[], denseOf: (itemId: string) => number, vectors: Float32Array, n: number, d: number, last: number, pooling: TextPriorPooling): Record<string, number> {
  const acc = new MetricAccumulator(KS);
  const scores = new Float32Array(n + 1); // [N + 1], index = dense id
  const dot = (a: number, b: number): number => {
    let s = 0;
    for (let k = 0; k < d; k++) s += (vectors[(a - 1) * d + k] as number) * (vectors[(b - 1) * d + k] as number);
    return s;
  };
  for (const row of rows) {
    const recent = row.history.slice(-last).map(denseOf);
    for (let id = 1; id <= n; id++) {
      const cosines = recent.map((q) => dot(q, id));
      scores[id] = pooling === 'max' ? Math.max(...cosines) : cosines.reduce((a, b) => a + b, 0) / cosines.length;
    }
    acc.add(rankOfTarget(scores, denseOf(row.target), new Set(recent)));
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
    const matrix = l2NormalizeRows(concatFields(embedded.matrices, embedded.fields));
    const embedSeconds = (performance.now() - started) / 1000;
    const denseOf = (itemId: string): number => {
      const id = catalog.registry.idOf(itemId);
      if (id === undefined) throw new Error(`item ${itemId} of the split is not in the catalog`);
      return id;
    };
    const metrics = (rows: readonly Row[]): Record<string, number> =>
      evaluate(rows, denseOf, matrix.data, matrix.rows, matrix.cols, last, pooling);
    const valid = metrics(dataset.split.valid);
    const test = metrics(dataset.split.test);
    const round = (m: Record<string, number>): Record<string, number> =>
      Object.fromEntries(['recall@5', 'recall@10', 'recall@50', 'ndcg@5', 'ndcg@10', 'ndcg@50'].map((k) => [k, Number((m[k] as number).toFixed(4))]));
    return {
      dataset: dataset.name,
      text,
      encoder: features.encoder,
      fields: embedded.fields,
      dims: matrix.cols,
      whiten: features.whiten,
      last,
      pooling,
      rule: 'items ranked by their cosine to the last items\' text vectors, pooled (max or mean); the query items excluded',
      embed_seconds: Number(embedSeconds.toFixed(1)),
      seconds: Number(((performance.now() - started) / 1000).toFixed(1)),
      valid: round(valid),
      test: round(test),
    };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}
