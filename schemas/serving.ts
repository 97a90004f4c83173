import { z } from 'zod';

/**
 * Settings of serving's candidate index (serving/ann/): the measurements behind the defaults are
 * in serving/ann/README.md and `npm run bench -- ann`.
 */
export const HnswSettings = z
  .strictObject({
    m: z
      .number()
      .int()
      .min(2)
      .max(128)
      .default(32)
      .describe('Links per node in the HNSW graph (M): more links give better recall at a given ef, a larger index and a slower build.'),
    efConstruction: z
      .number()
      .int()
      .min(1)
      .max(4096)
      .default(200)
      .describe('Candidate list size while inserting (efConstruction): larger builds a better graph, more slowly; search speed is unaffected.'),
    ef: z
      .number()
      .int()
      .min(1)
      .max(4096)
      .default(256)
      .describe('Default candidate list size while searching (ef), at least k: larger gives better recall and slower queries. A search may override it.'),
    seed: z
      .number()
      .int()
      .min(0)
      .max(2 ** 31 - 1)
      .default(100)
      .describe('Seed of the random level assignment, so that the same items inserted in the same order build the same graph.'),
  })
  .describe('HNSW graph (hnswlib, inner product).');
export type HnswSettings = z.infer<typeof HnswSettings>;

export const AnnConfig = z
  .strictObject({
    index: z
      .enum(['auto', 'exact', 'hnsw'])
      .default('auto')
      .describe('auto: exact search when the catalog has fewer than exactBelow items, HNSW from there on; exact or hnsw force one.'),
    exactBelow: z
      .number()
      .int()
      .min(0)
      .default(20_000)
      .describe(
        'With index auto, catalogs smaller than this are searched exactly (every item scored: no build, no recall loss); larger ones get an HNSW index. The choice is made when the index is built; items added later do not switch it.',
      ),
    hnsw: HnswSettings.prefault({}).describe('HNSW settings, used when the index is HNSW.'),
  })
  .describe('Candidate generation: the index serving ranks items with.');
export type AnnConfig = z.infer<typeof AnnConfig>;
export type AnnConfigInput = z.input<typeof AnnConfig>;

/**
 * Settings of the serving stage (`serving` in the streamrec config): the HTTP API's limits, the
 * popular-items fallback, model reloads and the admin key. Strict; every key has a default.
 */
/** Default of `serving.candidates`. */
export const DEFAULT_CANDIDATES = 50;

export const ServingConfig = z
  .strictObject({
    host: z.string().min(1).default('127.0.0.1').describe('Interface the HTTP server listens on (0.0.0.0: every interface).'),
    port: z.number().int().min(0).max(65_535).default(8080).describe('HTTP port (0: any free port).'),
    defaultK: z.number().int().min(1).max(200).default(10).describe('Items returned when a request names no k.'),
    maxK: z.number().int().min(1).max(1000).default(200).describe('Largest k a request may ask for.'),
    maxHistoryItems: z
      .number()
      .int()
      .min(1)
      .default(1000)
      .describe('Most item ids a stateless request may send as its history (the model reads only the most recent ones).'),
    maxIdLength: z.number().int().min(1).max(4096).default(256).describe('Longest user or item id a request may carry, in characters.'),
    maxQueryLength: z.number().int().min(1).default(2000).describe('Longest free-text search query, in characters.'),
    bodyLimitBytes: z.number().int().min(1024).default(256 * 1024).describe('Largest request body; larger ones are refused with 413.'),
    popularWindowMs: z
      .number()
      .int()
      .positive()
      .default(7 * 24 * 3600 * 1000)
      .describe('Window of event time (back from the newest event seen) over which the popular-items fallback counts interactions.'),
    popularRefreshMs: z.number().int().positive().default(30_000).describe('How often the popular items are counted again.'),
    reloadPollMs: z.number().int().positive().default(1000).describe('How often the model registry is checked for a new live version.'),
    catalogPrepareWaitMs: z
      .number()
      .int()
      .nonnegative()
      .default(5000)
      .describe(
        'A catalog that grew (new items coded between rebuilds) is loaded with the active model as soon as a trainer has prepared ' +
          'the model for it (its ONNX encoder, item table and indexes: a trainer with --prepare-serving, or streamrec run, does), else after this long: ' +
          'the server then exports the encoder and computes the item table itself, on its event loop (hundreds of ms of stalls).',
      ),
    adminApiKey: z
      .string()
      .default('')
      .describe('Key that admin endpoints require in the `x-api-key` header (compared in constant time); empty: admin endpoints are disabled.'),
    reportFile: z
      .string()
      .default('')
      .describe(
        'An HTML report written by `streamrec report --out <file>` (or the demo): served read-only at GET /report, no key needed, ' +
          'read again when the file changes. Empty: /report answers 404.',
      ),
    readyMaxStalenessMs: z
      .number()
      .int()
      .nonnegative()
      .default(0)
      .describe('With a value above 0, /readyz fails while the newest history change is older than this (0: only the catch-up is checked).'),
    validateResponses: z
      .boolean()
      .default(true)
      .describe(
        'Check every /v1 response against its zod schema (serving/api.ts) before it is sent; one that does not match is logged (route, field, reason) and answered 500. ' +
          'Responses are serialized from the schemas either way (a field a schema lacks is never written); this also checks values and types, for about 1 us per response. false: serialize only.',
      ),
    shutdownGraceMs: z.number().int().positive().default(10_000).describe('How long a shutdown waits for requests in flight before closing.'),
    workers: z
      .number()
      .int()
      .min(1)
      .max(256)
      .default(1)
      .describe(
        'Server processes of `streamrec serve` behind its one port (node:cluster; `--workers`, where auto is one per core). A server answers on one core (ONNX Runtime, HNSW and ranking run on its event loop); each worker loads the model and follows the histories and the registry itself (its own memory), /metrics and /admin/reload speak for all of them. ' +
          '`streamrec run` (which refuses more) and the demo (which uses 1) serve from the process that ingests, where the histories are.',
      ),
    swapOneAtATime: z
      .boolean()
      .default(true)
      .describe(
        'With several workers, they load a new model version one at a time (each asks the primary for the turn), so that while one loads the others keep their cores for requests; ' +
          'every worker still swaps, the last one a load later. Off: all load at once (the new version everywhere sooner, every worker slower meanwhile).',
      ),
    engine: z
      .enum(['auto', 'onnx', 'tfjs'])
      .default('auto')
      .describe('What computes user vectors: onnx (the model exported to an ONNX graph, run by onnxruntime-node), tfjs (the model itself), or auto (onnx, falling back to tfjs when the export fails).'),
    onnxThreads: z
      .number()
      .int()
      .min(0)
      .default(1)
      .describe(
        "Intra-op threads of an ONNX Runtime session (0: its default, one per core). 1 by default: a request's user vector is a small batch, and extra threads only compete with the event loop (bench serving on 2 cores: 608 vs 517 requests/s).",
      ),
    inferenceThread: z
      .boolean()
      .default(false)
      .describe(
        "Run the ONNX sessions (user encoder, item scorers) in a worker thread of their own instead of on the event loop, where onnxruntime-node runs them synchronously: the event loop then only posts inputs and reads answers (an encoder run cost it 87 us in place, 34 us through the thread). " +
          'Off by default: on 2 shared cores (bench serving, Scientific) it cut the server thread from ~0.8 to ~0.45 of a core at 2,000 requests/s, but two thread crossings per request halved the saturated requests/s (3,700 -> 2,000) and the one-connection rate (1,715 -> 803/s), and the open-loop p99 did not improve.',
      ),
    heapGrowingPercent: z
      .number()
      .int()
      .min(0)
      .max(400)
      .default(100)
      .describe(
        "V8's old-generation growing factor for the serving process, 1 + this/100 (0: V8's own choice). Under load V8 chose ~1.1 for the server, a full mark-compact every ~1 s with a 69 MB live heap, each a 5-14 ms pause; " +
          'at 100 (the default) the heap may grow to twice its live size and there was one in 40 s (bench serving, docs/benchmarks.md).',
      ),
    parallelScavenge: z
      .boolean()
      .default(false)
      .describe(
        "Let V8's young-generation collections (scavenges, a few per second under load) use helper threads. Off by default: with the cores busy answering requests, the helpers wait for one and the collecting thread waits for them. " +
          'bench serving at 100,000 items, 2,000 requests/s on 2 cores: scavenge pauses p50 1.7 -> 1.2 ms and longest 7.2 -> 2.8 ms without helpers (V8 --trace-gc-nvp, 150 scavenges each). Turn on for servers with cores to spare.',
      ),
    ann: AnnConfig.prefault({}).describe('Candidate generation: exact scoring of every item for small catalogs, HNSW above a size.'),
    candidates: z
      .number()
      .int()
      .min(1)
      .default(DEFAULT_CANDIDATES)
      .describe(
        'Candidates taken from the HNSW model index before they are scored exactly (at least k), and the length of the text-neighbour list kept per query item of the text prior (both index kinds); ' +
          "their searches run at ef = this count (the union is rescored exactly), so it is ranking's recall knob, and ann.hnsw.ef stays for similar-item searches. " +
          '50 by default: at 100,000 items, recall@10 against exact ranking 0.993 (100: 0.999, 40: 0.986) at about 1.7x the requests/s of 100 (bench serving, docs/benchmarks.md).',
      ),
    annCacheEntries: z
      .number()
      .int()
      .min(0)
      .default(8)
      .describe(
        'Built HNSW indexes kept in <artifacts.dir>/ann-cache, keyed by their vectors and settings, and host item tables in <artifacts.dir>/item-table-cache, keyed by checkpoint and catalog: a restart, a replica, a reload of the same vectors or a publication its trainer prepared loads them instead of computing them. 0: no caches.',
      ),
  })
  .describe('The serving stage: recommendations over HTTP.');
export type ServingConfig = z.infer<typeof ServingConfig>;
