/**
 * `npm run bench -- quantizer [--quick] [--seed N] [--dump DIR] [--embeddings FILE.npy] [--methods pq,opq,rq,rqkmeans]`
 *
 * Trains PQ (20 books x 256 codes), OPQ (20 x 256), RQ and RQ-KMeans (4 levels x 256) on a
 * synthetic 25,000 x 640 matrix (a seeded mixture of correlated Gaussian clusters, see
 * quantizer/synthetic.ts) and on the Amazon Scientific item matrix (GloVe-SIF + PCA, as
 * `streamrec rebuild` builds it; or the matrix in `--embeddings`). Reports per method: train seconds, encode seconds, relative reconstruction error,
 * utilization (mean over levels of the fraction of codes used and of the perplexity) and the
 * collision rate. Progress goes to stderr; the returned object is printed as the last line.
 *
 * `--dump DIR` writes the exact matrix PQ was trained on as float32 `.npy` plus a JSON with the
 * seed and generator settings, so that faiss can be run on the same data elsewhere:
 *   `faiss.IndexPQ(640, 20, 8)` trained on it, `rel_mse = ||x - decode(encode(x))||^2 / ||x||^2`.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ConfigError } from '../errors';
import { Catalog, FeaturesConfig, runFeaturesJobFromConfig } from '../features';
import { ArtifactStore, sha256, writeFileAtomic } from '../infra/artifacts';
import { loadDataset } from '../datasets';
import { concatFields } from '../quantizer/rebuild';
import { decodeNpy, encodeNpy } from '../infra/npy';
import { initTf } from '../infra/tf';
import { setLogLevel } from '../logging';
import {
  quantizationMetrics,
  syntheticClusters,
  trainQuantizer,
  type Matrix,
  type QuantizerSettingsInput,
} from '../quantizer';
import { Random } from '../random';

type Method = 'pq' | 'opq' | 'rq' | 'rqkmeans';
const METHODS: Method[] = ['pq', 'opq', 'rq', 'rqkmeans'];
const PQ_TRAIN_TARGET_S = 20;

interface Args {
  quick: boolean;
  seed: number;
  dump?: string;
  embeddings?: string;
  methods: Method[];
}

function parseArgs(args: string[]): Args {
  const out: Args = { quick: false, seed: 20251121, methods: METHODS };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const value = (): string => {
      const v = args[++i];
      if (v === undefined) throw new ConfigError(`bench quantizer: ${a} needs a value`);
      return v;
    };
    if (a === '--quick') out.quick = true;
    else if (a === '--seed') out.seed = Number.parseInt(value(), 10);
    else if (a === '--dump') out.dump = value();
    else if (a === '--embeddings') out.embeddings = value();
    else if (a === '--methods') {
      const list = value().split(',');
      const bad = list.filter((m) => !METHODS.includes(m as Method));
      if (bad.length > 0) throw new ConfigError(`bench quantizer: --methods takes ${METHODS.join(',')}; received ${bad.join(',')}`);
      out.methods = list as Method[];
    } else throw new ConfigError(`bench quantizer: unknown argument ${JSON.stringify(a)} (known: --quick --seed --dump --embeddings --methods)`);
  }
  if (!Number.isInteger(out.seed)) throw new ConfigError('bench quantizer: --seed must be an integer');
  return out;
}

function progress(line: string): void {
  process.stderr.write(`[bench quantizer] ${line}\n`);
}

/**
 * Settings per method: PQ/OPQ 20 books x 256 codes (16 with --quick, or `books` when given),
 * RQ/RQ-KMeans 4 levels x 256.
 */
function settingsFor(method: Method, quick: boolean, books?: number): QuantizerSettingsInput {
  if (method === 'pq' || method === 'opq') {
    books ??= quick ? 16 : 20;
    return {
      method,
      levels: books,
      codesPerLevel: 256,
      ...(method === 'opq' && quick ? { opq: { rotationIterations: 3 } } : {}),
    };
  }
  return { method, levels: 4, codesPerLevel: 256 };
}

const round = (v: number, digits = 4): number => Number(v.toFixed(digits));

async function runMethods(x: Matrix, methods: Method[], quick: boolean, seed: number, label: string, books?: number): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const method of methods) {
    const settings = settingsFor(method, quick, books);
    if ((method === 'pq' || method === 'opq') && x.cols % (settings.levels as number) !== 0) {
      out[method] = `skipped: dims ${x.cols} not divisible by ${settings.levels} books`;
      progress(`${label} ${method}: ${out[method] as string}`);
      continue;
    }
    progress(`${label} ${method}: training ${settings.levels} x ${settings.codesPerLevel} on [${x.rows}, ${x.cols}] ...`);
    let t = performance.now();
    const trained = await trainQuantizer(x, settings, new Random(seed));
    const trainS = (performance.now() - t) / 1000;
    t = performance.now();
    const encoded = trained.quantizer.encode(x);
    const encodeS = (performance.now() - t) / 1000;
    const { levels, codesPerLevel } = trained.quantizer;
    // Metrics of the codes the semantic-ID table stores (for rqkmeans: the balanced assignment).
    const m = quantizationMetrics(trained.codes, x.rows, levels, codesPerLevel, { x, recon: trained.quantizer.decode(trained.codes, x.rows) });
    const result: Record<string, unknown> = {
      train_s: round(trainS, 2),
      encode_s: round(encodeS, 2),
      rel_mse: round(m.relMse ?? Number.NaN),
      utilization: round(m.meanFractionUsed),
      perplexity: round(m.meanPerplexity, 1),
      collision_rate: round(m.collisionRate),
      levels,
      codes_per_level: codesPerLevel,
    };
    if (method === 'rqkmeans') {
      const e = quantizationMetrics(encoded, x.rows, levels, codesPerLevel, { x, recon: trained.quantizer.decode(encoded, x.rows) });
      result.nearest_rel_mse = round(e.relMse ?? Number.NaN);
      result.nearest_perplexity = round(e.meanPerplexity, 1);
    }
    out[method] = result;
    progress(`${label} ${method}: ${JSON.stringify(result)}`);
  }
  return out;
}

/** The Scientific item matrix of a default rebuild (features job only), in a temporary store. */
async function scientificMatrix(seed: number): Promise<Matrix> {
  const dir = await mkdtemp(path.join(tmpdir(), 'streamrec-bench-quantizer-'));
  try {
    const catalog = new Catalog();
    await catalog.applyAll((await loadDataset('scientific')).items);
    const features = await runFeaturesJobFromConfig(catalog, new ArtifactStore(dir), FeaturesConfig.parse({}), new Random(seed));
    return concatFields(features.matrices, features.fields);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function loadEmbeddings(file: string): Promise<Matrix> {
  const array = decodeNpy(await readFile(file), file);
  if (array.dtype !== 'float32' || array.shape.length !== 2) {
    throw new ConfigError(`--embeddings ${file}: expected a 2-D float32 .npy, received ${array.dtype} [${array.shape.join(', ')}]`);
  }
  const [rows, cols] = array.shape as [number, number];
  return { data: array.data as Float32Array, rows, cols };
}

export async function run(args: string[]): Promise<Record<string, unknown>> {
  const a = parseArgs(args);
  // Progress lines below say what happens; library logs only when something is wrong.
  if (!process.env.STREAMREC_LOG_LEVEL) setLogLevel('warn');
  const tfInfo = await initTf();
  progress(`backend ${tfInfo.backend} (${tfInfo.reason})`);

  const generator = { rows: a.quick ? 4000 : 25000, dims: a.quick ? 128 : 640, clusters: 100, clusterRank: 16, globalRank: 64 };
  let t = performance.now();
  const synthetic = syntheticClusters(generator, new Random(a.seed));
  progress(`synthetic [${generator.rows}, ${generator.dims}] generated in ${((performance.now() - t) / 1000).toFixed(2)} s (seed ${a.seed})`);

  if (a.dump) {
    const npy = encodeNpy(synthetic.matrix.data, [synthetic.matrix.rows, synthetic.matrix.cols]);
    const npyPath = path.join(a.dump, 'pq_train_matrix.npy');
    await writeFileAtomic(npyPath, npy);
    const meta = {
      description: 'The exact float32 matrix the benchmark trained PQ on (row-major, C order).',
      generator: 'streamrec quantizer/synthetic.ts syntheticClusters (mixture of correlated Gaussian clusters)',
      seed: a.seed,
      settings: synthetic.settings,
      shape: [synthetic.matrix.rows, synthetic.matrix.cols],
      sha256: sha256(npy),
      pq: { books: settingsFor('pq', a.quick).levels, codesPerBook: 256, nbits: 8, metric: 'L2 training/encoding' },
      relMse: 'sum ||x - decode(encode(x))||^2 / sum ||x||^2',
    };
    await writeFileAtomic(path.join(a.dump, 'pq_train_matrix.json'), `${JSON.stringify(meta, null, 2)}\n`);
    progress(`dumped ${npyPath} (${npy.length} bytes, sha256 ${meta.sha256.slice(0, 12)}...)`);
  }

  t = performance.now();
  const result: Record<string, unknown> = await runMethods(synthetic.matrix, a.methods, a.quick, a.seed, 'synthetic');
  progress(`synthetic done in ${((performance.now() - t) / 1000).toFixed(1)} s`);

  // Amazon Scientific: the item matrix the rebuild quantizes (GloVe-SIF, whitened PCA to 64 dims
  // per field; one `meta` field), or a given one. PQ/OPQ use 16 books of 4 dims there.
  const x = a.embeddings ? await loadEmbeddings(a.embeddings) : await scientificMatrix(a.seed);
  progress(`scientific item matrix [${x.rows}, ${x.cols}]${a.embeddings ? ` from ${a.embeddings}` : ' (GloVe-SIF + PCA 64)'}`);
  result.scientific = await runMethods(x, a.methods, a.quick, a.seed, 'scientific', x.cols % 16 === 0 ? 16 : undefined);

  const pq = result.pq as { train_s?: number } | undefined;
  result.meta = {
    backend: tfInfo.backend,
    quick: a.quick,
    seed: a.seed,
    synthetic: { rows: generator.rows, dims: generator.dims },
    pq_train_target_s: PQ_TRAIN_TARGET_S,
    ...(pq?.train_s !== undefined && !a.quick ? { pq_train_within_target: pq.train_s <= PQ_TRAIN_TARGET_S } : {}),
  };
  return result;
}
