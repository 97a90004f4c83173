/**
 * `npm run bench -- ann [--sizes 4385,100000] [--dims 64] [--queries 1000] [--efs 16,32,64,128,256]
 *  [--seed 7] [--clusters 64] [--spread 1] [--m 16] [--ef-construction 200]`
 *
 * Serving's candidate indexes on seeded clustered unit vectors (serving/ann/synthetic.ts) at each
 * catalog size: build time; per-request latency (p50, p99) for one query (B = 1) with the exact
 * index's two scorers (JS loop, TF.js matMul + topk) and its automatic choice; HNSW at default
 * settings (or `--m`, `--ef-construction`); then, per ef, HNSW latency and recall@10 against exact search; recall@10 with the
 * user's top items excluded, and after save and reload. Queries are drawn from the same clusters.
 * Progress goes to stderr; the returned object is printed as the last line.
 */
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ConfigError } from '../errors';
import { takeRows, type Matrix } from '../infra/matrix';
import { initTf } from '../infra/tf';
import { setLogLevel } from '../logging';
import { Random } from '../random';
import { ExactIndex, HnswIndex, HnswSettings, clusteredUnitVectors, loadAnnIndex, type AnnHits, type AnnIndex, type AnnSearchOptions } from '../serving';
import { hnswlib } from '../serving/ann';
import { numberFlag, parseFlags } from './_flags';
import { percentile } from './_measure';

const FLAGS = new Set(['sizes', 'dims', 'queries', 'efs', 'seed', 'clusters', 'spread', 'm', 'ef-construction']);
const K = 10;
const WARMUP = 20;

function listFlag(value: string | undefined, fallback: number[], name: string): number[] {
  if (value === undefined) return fallback;
  const out = value.split(',').map((s) => Number(s.trim()));
  if (out.some((n) => !Number.isInteger(n) || n < 1)) throw new ConfigError(`--${name} must be a comma-separated list of positive integers, got ${JSON.stringify(value)}`);
  return out;
}

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

/** Per-query latency in ms (one query per call, after a warm-up): p50, p99, mean. */
function latency(index: AnnIndex, queries: Matrix, options: (q: number) => AnnSearchOptions | undefined = () => undefined): { p50: number; p99: number; mean: number } {
  const d = queries.cols;
  for (let q = 0; q < Math.min(WARMUP, queries.rows); q++) index.search(queries.data.subarray(q * d, (q + 1) * d), K, options(q));
  const times: number[] = [];
  for (let q = 0; q < queries.rows; q++) {
    const query = queries.data.subarray(q * d, (q + 1) * d);
    const opts = options(q);
    const t0 = process.hrtime.bigint();
    index.search(query, K, opts);
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  times.sort((a, b) => a - b);
  const round = (v: number): number => Math.round(v * 1000) / 1000;
  return { p50: round(percentile(times, 0.5)), p99: round(percentile(times, 0.99)), mean: round(times.reduce((a, b) => a + b, 0) / times.length) };
}

function recall(hits: AnnHits[], reference: AnnHits[]): number {
  let sum = 0;
  for (let q = 0; q < hits.length; q++) {
    const want = new Set((reference[q] as AnnHits).ids);
    sum += Array.from((hits[q] as AnnHits).ids).filter((id) => want.has(id)).length / Math.max(1, want.size);
  }
  return Math.round((sum / Math.max(1, hits.length)) * 10000) / 10000;
}

async function seconds<T>(work: () => Promise<T>): Promise<[T, number]> {
  const t0 = process.hrtime.bigint();
  const out = await work();
  return [out, Math.round(Number(process.hrtime.bigint() - t0) / 1e6) / 1000];
}

async function dirBytes(dir: string, files: string[]): Promise<number> {
  let total = 0;
  for (const f of files) total += (await stat(path.join(dir, f))).size;
  return total;
}

export async function run(args: string[]): Promise<Record<string, unknown>> {
  setLogLevel('warn');
  const flags = parseFlags(args, FLAGS);
  const sizes = listFlag(flags.get('sizes'), [4385, 100_000], 'sizes');
  const efs = listFlag(flags.get('efs'), [16, 32, 64, 128, 256], 'efs');
  const dims = numberFlag(flags, 'dims') ?? 64;
  const queryCount = numberFlag(flags, 'queries') ?? 1000;
  const seed = numberFlag(flags, 'seed') ?? 7;
  const clusters = numberFlag(flags, 'clusters') ?? 64;
  const spread = numberFlag(flags, 'spread') ?? 1;
  const defaults = HnswSettings.parse({
    ...(flags.has('m') ? { m: numberFlag(flags, 'm') } : {}),
    ...(flags.has('ef-construction') ? { efConstruction: numberFlag(flags, 'ef-construction') } : {}),
  });
  const backend = await initTf();
  log(`ann bench: sizes ${sizes.join(', ')}, D=${dims}, ${queryCount} queries, k=${K}, clusters ${clusters}, spread ${spread}, TF.js ${backend.backend}`);
  const tmp = await mkdtemp(path.join(tmpdir(), 'streamrec-bench-ann-'));
  const results: Record<string, unknown>[] = [];
  try {
    for (const n of sizes) {
      const all = clusteredUnitVectors(n + queryCount, dims, new Random(seed), { clusters, spread });
      const items = takeRows(all, Array.from({ length: n }, (_, i) => i));
      const queries = takeRows(all, Array.from({ length: queryCount }, (_, i) => n + i));

      const [exactJs, exactBuildS] = await seconds(() => ExactIndex.build(items, { scorer: 'js' }));
      const exactTf = await ExactIndex.build(items, { scorer: 'tf' });
      const exactAuto = await ExactIndex.build(items);
      const [reference, batchS] = await seconds(async () => exactTf.search(queries, K));
      const exclusions = reference.map((r) => Array.from(r.ids.subarray(0, 5))); // the user "has" the 5 best
      const referenceExcl = exactTf.search(queries, K, { exclude: exclusions });
      const exact = { buildS: exactBuildS, js: latency(exactJs, queries), tf: latency(exactTf, queries), auto: latency(exactAuto, queries), tfBatchMsPerQuery: Math.round((batchS * 1e6) / queryCount) / 1000 };
      log(`N=${n} exact: B=1 js p50 ${exact.js.p50} ms p99 ${exact.js.p99}; tf p50 ${exact.tf.p50} p99 ${exact.tf.p99}; auto p50 ${exact.auto.p50} p99 ${exact.auto.p99}; batched tf ${exact.tfBatchMsPerQuery} ms/query`);
      [exactJs, exactTf, exactAuto].forEach((i) => i.dispose());

      const [hnsw, hnswBuildS] = await seconds(() => HnswIndex.build(items, defaults));
      log(`N=${n} hnsw build ${hnswBuildS} s (M=${defaults.m}, efConstruction=${defaults.efConstruction})`);
      const perEf: Record<string, unknown>[] = [];
      for (const ef of efs) {
        const r = recall(hnsw.search(queries, K, { ef }), reference);
        const lat = latency(hnsw, queries, () => ({ ef }));
        perEf.push({ ef, recallAt10: r, ...lat });
        log(`N=${n} hnsw ef=${ef}: recall@10 ${r}, p50 ${lat.p50} ms, p99 ${lat.p99} ms`);
      }
      const atDefault = {
        ef: defaults.ef,
        recallAt10: recall(hnsw.search(queries, K), reference),
        recallAt10Excluding5: recall(hnsw.search(queries, K, { exclude: exclusions }), referenceExcl),
        latency: latency(hnsw, queries),
        latencyExcluding5: latency(hnsw, queries, (q) => ({ exclude: [exclusions[q] as number[]] })),
      };
      const dir = path.join(tmp, `hnsw-${n}`);
      const [manifest, saveS] = await seconds(() => hnsw.save(dir));
      const [loaded, loadS] = await seconds(() => loadAnnIndex(dir));
      const reloaded = { saveS, loadS, bytes: await dirBytes(dir, manifest.files.map((f) => f.name)), recallAt10: recall(loaded.search(queries, K), reference) };
      log(`N=${n} hnsw default ef=${defaults.ef}: recall@10 ${atDefault.recallAt10} (excluding top 5: ${atDefault.recallAt10Excluding5}, reloaded: ${reloaded.recallAt10}), p50 ${atDefault.latency.p50} ms, p99 ${atDefault.latency.p99} ms`);
      loaded.dispose();
      hnsw.dispose();
      results.push({
        n,
        exact,
        hnsw: { buildS: hnswBuildS, defaults, atDefault, perEf, reloaded },
        ratios: { exactJsOverTfP50: Math.round((exact.js.p50 / exact.tf.p50) * 100) / 100, exactAutoOverHnswP50: Math.round((exact.auto.p50 / atDefault.latency.p50) * 100) / 100 },
      });
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  return { bench: 'ann', dims, queries: queryCount, k: K, seed, clusters, spread, tfBackend: backend.backend, hnswlib: hnswlib().name, results };
}
