import path from 'node:path';
import v8 from 'node:v8';
import type { FastifyInstance } from 'fastify';
import { createTextEncoderSpec } from '../features';
import { ArtifactStore } from '../infra/artifacts';
import { createKafka } from '../infra/kafka';
import { followAnnouncements, type AnnouncementFollower, type PublishedModel } from '../infra/registry';
import { initTf } from '../infra/tf';
import { Instrumentation } from '../instrumentation';
import { openRegistry, type AppConfig } from '../jobs';
import { createLogger } from '../logging';
import { ItemTableCache } from './itemTableCache';
import { AnnIndexCache, hnswlib } from './ann';
import { CatalogFollower } from './catalogFollower';
import { ClusterMember, servingWorkerIndex } from './cluster';
import { FreshHistories } from './histories';
import { MemoryHistories, type HistoryView } from './historyView';
import { ServingMetrics } from './metrics';
import { ModelHolder, type SwapOutcome } from './modelHolder';
import { ModelVersion, type ModelVersionOptions } from './modelVersion';
import { InferenceThread } from './onnx';
import { buildServer } from './server';

const log = createLogger('serving.run');

/** Where serving reads users' histories: the changelog ingest writes (Kafka), or an in-memory view (stateless use, tests). */
export type HistorySourceChoice =
  | { readonly kind: 'kafka'; readonly brokers?: string[] }
  /** Histories held in this process: given ones (an ingest running beside serving: {@link LocalHistories}), or none (stateless requests, the popular fallback). */
  | { readonly kind: 'memory'; readonly histories?: HistoryView };

export interface ServingRuntime {
  readonly app: FastifyInstance;
  /** `http://host:port` once listening. */
  readonly url: string;
  readonly models: ModelHolder;
  readonly histories: HistoryView;
  readonly instrumentation: Instrumentation;
  /** This process's slot in a serving cluster (`streamrec serve --workers N`: serving/cluster.ts); undefined when it serves alone. */
  readonly worker: number | undefined;
  /** Stops watching, drains the requests in flight (up to shutdownGraceMs), closes everything. */
  close(): Promise<void>;
}

/** How `config`'s servers load model versions: engine, ONNX threads, index settings and the index cache (in `<artifacts.dir>/ann-cache`). */
export function modelVersionOptions(config: AppConfig): ModelVersionOptions {
  return {
    engine: config.serving.engine,
    onnxThreads: config.serving.onnxThreads,
    ann: config.serving.ann,
    candidates: config.serving.candidates,
    ...(config.serving.annCacheEntries > 0
      ? {
          annCache: new AnnIndexCache(path.join(config.artifacts.dir, 'ann-cache'), config.serving.annCacheEntries),
          tableCache: new ItemTableCache(path.join(config.artifacts.dir, 'item-table-cache'), config.serving.annCacheEntries),
        }
      : {}),
  };
}

/**
 * Makes what `config`'s servers will load for `checkpointId` before it is published (the ONNX
 * user encoder, the HNSW indexes in the cache): {@link ModelVersion.prepare}. Returns each step's
 * time (ms).
 */
export async function prepareServing(config: AppConfig, checkpointId: string): Promise<Readonly<Record<string, number>>> {
  await initTf();
  return ModelVersion.prepare(new ArtifactStore(config.artifacts.dir), checkpointId, modelVersionOptions(config));
}

/**
 * Starts serving: the live model from the registry (and every later one, hot-swapped), the
 * histories, the HTTP server on `serving.host:port`. Resolves once it listens; a server with no
 * published model yet answers 503 until one is published.
 */
export async function startServing(config: AppConfig, options: { readonly histories: HistorySourceChoice; readonly instrumentation?: Instrumentation }): Promise<ServingRuntime> {
  await initTf();
  // The native hnswlib build, chosen now: a bad STREAMREC_HNSWLIB fails the start, not the first index load.
  const hnsw = hnswlib();
  // Read by V8 at each old-generation limit it sets, so it applies from here on (serving.heapGrowingPercent).
  if (config.serving.heapGrowingPercent > 0) v8.setFlagsFromString(`--heap-growing-percent=${config.serving.heapGrowingPercent}`);
  // Read by V8 at each scavenge (serving.parallelScavenge).
  if (!config.serving.parallelScavenge) v8.setFlagsFromString('--no-parallel-scavenge');
  const instrumentation = options.instrumentation ?? new Instrumentation();
  const store = new ArtifactStore(config.artifacts.dir);
  const registry = openRegistry(config);
  const metrics = new ServingMetrics();
  // A worker of a serving cluster answers its primary from here on (a stop while it loads ends it
  // at once); the primary asks it for metrics and registry checks only once it listens.
  const workerIndex = servingWorkerIndex();
  let close: (() => Promise<void>) | undefined;
  const member: ClusterMember | undefined =
    workerIndex === undefined
      ? undefined
      : new ClusterMember(workerIndex, {
          registry: metrics.registry,
          sync: () => models.syncWith(registry, { retry: true }),
          version: () => models.current?.published.version ?? null,
          close: () => close?.() ?? Promise.resolve(),
        });
  // The rebuild's text encoder, for search (loaded once; every version's catalog is checked against it).
  const textSpec = await createTextEncoderSpec(config.features).catch((error: unknown) => {
    log.warn({ err: error }, 'the text encoder could not be loaded: search is unavailable');
    return undefined;
  });
  // The ONNX sessions off the event loop (serving.inferenceThread).
  const inferenceThread = config.serving.inferenceThread ? new InferenceThread() : undefined;
  const versionOptions = { ...modelVersionOptions(config), ...(textSpec ? { textSpec } : {}), ...(inferenceThread ? { inferenceThread } : {}) };
  const load = (published: PublishedModel): Promise<ModelVersion> => ModelVersion.load(store, published, versionOptions);
  // In a cluster, one worker loads at a time once they listen (serving.swapOneAtATime).
  const models: ModelHolder = new ModelHolder((published) => (member && config.serving.swapOneAtATime ? member.oneLoadAtATime(() => load(published)) : load(published)), instrumentation);
  let fresh: FreshHistories | undefined;
  let histories: HistoryView;
  if (options.histories.kind === 'kafka') {
    const kafka = createKafka({ ...config.kafka, ...(options.histories.brokers ? { brokers: options.histories.brokers } : {}) }, 'serving');
    fresh = await FreshHistories.follow({ kafka, topic: config.ingest.topics.changelog });
    histories = fresh;
  } else {
    histories = options.histories.histories ?? new MemoryHistories();
  }
  // The registry watch and the announcements run before the first load (which can take long), so
  // that a version published during it is swapped to after it (ModelHolder.follow).
  const following = models.follow(registry, { pollMs: config.serving.reloadPollMs });
  let announcements: AnnouncementFollower | undefined;
  let catalogTimer: ReturnType<typeof setInterval> | undefined;
  /** Stops what serving started besides the HTTP server, at whatever point the start got to: watches, histories, models, threads. */
  const release = async (): Promise<void> => {
    following.stop();
    clearInterval(catalogTimer);
    await fresh?.stop();
    await announcements?.stop();
    // Before the inference thread and the text encoder that a load under way uses.
    await models.close();
    await inferenceThread?.close();
    await textSpec?.dispose();
  };
  let first: SwapOutcome;
  try {
    // Announced publications (modelRegistry.announce): a registry check at once; the watch's poll stays the fallback.
    announcements = config.modelRegistry.announce
      ? await followAnnouncements(createKafka(config.kafka, 'serving-models'), config.ingest.topics.models, registry.url, (announced) =>
          void models.syncWith(registry).then(
            (outcome) => log.info({ announced: announced.version, outcome: outcome.kind }, 'model publication announced'),
            (error: unknown) => log.error({ err: error }, 'model swap failed'),
          ),
        )
      : undefined;
    first = await following.first;
  } catch (error) {
    // A start that fails here leaves nothing running: the watch, the histories, a load under way.
    await release();
    throw error;
  }
  if (first.kind === 'failed') log.error({ version: first.version, error: first.error }, 'the live model version could not be loaded; waiting for another');
  if (!models.current) log.warn({ registry: registry.url }, 'no model is published yet: requests get 503 until one is');
  // New items between rebuilds: the active publication loaded again with its grown catalog
  // (serving/catalogFollower.ts), a failed load retried after a backoff from reloadPollMs.
  const catalog = new CatalogFollower(store, models, { prepareWaitMs: config.serving.catalogPrepareWaitMs, retryMs: config.serving.reloadPollMs });
  catalogTimer = setInterval(() => void catalog.check().catch((error: unknown) => log.error({ err: error }, 'catalog check failed')), config.serving.reloadPollMs);
  catalogTimer.unref();
  const app = buildServer({ config: config.serving, models, histories, registry, metrics, ...(member ? { cluster: member } : {}) });
  let address: string;
  try {
    address = await app.listen({ host: config.serving.host, port: config.serving.port });
  } catch (error) {
    // Nothing started here outlives a server that could not listen (a port taken, say): the app's
    // own close hooks too (the popular items' timer); the listen error is the one reported.
    await app.close().catch((cleanup: unknown) => log.error({ err: cleanup }, 'closing the app after a failed listen failed'));
    await release().catch((cleanup: unknown) => log.error({ err: cleanup }, 'releasing after a failed listen failed'));
    throw error;
  }
  log.info(
    { address, model: models.current?.describe(), histories: options.histories.kind, hnswlib: hnsw.name, hnswlibReason: hnsw.reason, ...(member ? { worker: member.worker } : {}) },
    'serving',
  );
  let closing: Promise<void> | undefined;
  const runtime: ServingRuntime = {
    app,
    url: address,
    models,
    histories,
    instrumentation,
    worker: workerIndex,
    close: () => {
      closing ??= (async () => {
        // No new registry checks while the requests in flight drain.
        following.stop();
        clearInterval(catalogTimer);
        const grace = setTimeout(() => {
          log.warn({ graceMs: config.serving.shutdownGraceMs }, 'requests still in flight after the grace period; closing their connections');
          app.server.closeAllConnections();
        }, config.serving.shutdownGraceMs);
        try {
          await app.close();
        } finally {
          clearTimeout(grace);
        }
        await release();
        log.info('serving stopped');
      })();
      return closing;
    },
  };
  close = runtime.close;
  member?.listening(address);
  return runtime;
}
