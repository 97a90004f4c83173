import type { ModelRegistry, PublishedModel, WatchOptions } from '../infra/registry';
import type { Instrumentation } from '../instrumentation';
import { createLogger } from '../logging';
import type { ModelVersion } from './modelVersion';

const log = createLogger('serving.models');

export type SwapOutcome =
  | { readonly kind: 'swapped'; readonly from: number | undefined; readonly to: number }
  | { readonly kind: 'unchanged'; readonly version: number | undefined }
  | { readonly kind: 'failed'; readonly version: number; readonly error: string };

/**
 * The model version serving answers with, and hot swaps to new ones: a new version is loaded and
 * warmed up beside the current one, then switched to in one assignment; requests in flight keep
 * the version they leased (released when they end), and the old version is freed after its last
 * request. A version that fails to load (corrupt, partial, incompatible) is logged, counted and
 * skipped: the current version keeps serving. Swaps run one at a time; once closed, a load that
 * was under way is disposed when it ends instead of being swapped in.
 */
export class ModelHolder {
  private active: ModelVersion | undefined;
  /** The publication of the active version. */
  private activePublished: PublishedModel | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;
  /** Versions that failed to load, so that a watch does not retry them on every check. */
  private readonly failed = new Set<number>();
  swaps = 0;
  failedSwaps = 0;
  /** Loads of the active version with a grown catalog that failed (the version itself keeps serving and is not marked failed). */
  failedCatalogReloads = 0;

  constructor(
    private readonly load: (published: PublishedModel) => Promise<ModelVersion>,
    private readonly instrumentation?: Instrumentation,
  ) {}

  /** The version new requests use, or undefined before the first successful load. */
  get current(): ModelVersion | undefined {
    return this.active;
  }

  /** Leases the current version for one request; undefined when no model is loaded. */
  lease(): { readonly version: ModelVersion; readonly release: () => void } | undefined {
    const version = this.active;
    return version ? { version, release: version.acquire() } : undefined;
  }

  /**
   * Swaps to `published` unless it is already active (or failed before and `retry` is not set).
   * A publication older than the active one is left alone: a report overtaken by a newer version
   * swapped in meanwhile (a rollback is a registry's live version: {@link syncWith}).
   */
  swapTo(published: PublishedModel, options: { readonly retry?: boolean } = {}): Promise<SwapOutcome> {
    return this.enqueue(() => {
      const active = this.active?.published.version;
      if (active !== undefined && published.version < active) return { kind: 'unchanged', version: active };
      return this.doSwap(published, options.retry ?? false);
    });
  }

  /**
   * Swaps to the registry's live version if it differs from the active one (an older one too: a
   * live pointer moved back is a rollback). The registry is read when this check's turn in the
   * swap queue comes: a read made before could be older than a version swapped in meanwhile.
   */
  syncWith(registry: ModelRegistry, options: { readonly retry?: boolean } = {}): Promise<SwapOutcome> {
    return this.enqueue(async () => {
      const live = await registry.live();
      return live ? this.doSwap(live, options.retry ?? false) : { kind: 'unchanged', version: this.active?.published.version };
    });
  }

  /**
   * Serves the registry's live version and every later one: watches the registry (each report
   * makes a registry check), then checks it once (`first`: the outcome of that check). The watch
   * is running before the first load, which can take long, so a version published during it is
   * swapped to after it; a second check after the first covers a publication between the first
   * check's read and the watch's own first read (a watch reports only what comes after that).
   */
  follow(registry: ModelRegistry, options: Pick<WatchOptions, 'pollMs'> = {}): { readonly first: Promise<SwapOutcome>; readonly stop: () => void } {
    const sync = (why: string): void =>
      void this.syncWith(registry).catch((error: unknown) => log.error({ err: error, registry: registry.url, why }, 'model registry check failed'));
    const stop = registry.watch(() => sync('a new live version'), options);
    const first = this.syncWith(registry);
    sync('after the first load');
    return { first, stop };
  }

  /**
   * Loads the active publication again, for a catalog that grew since it was loaded (items coded
   * with the same codebooks: scored without retraining), and swaps to it like a new version. A
   * load that fails is counted in {@link failedCatalogReloads}, not as a failed swap: the version
   * is the one serving, and marking it failed would refuse a later rollback to it.
   */
  reloadCatalog(): Promise<SwapOutcome> {
    return this.enqueue(() => {
      const current = this.activePublished;
      return current ? this.doSwap(current, true, true) : { kind: 'unchanged', version: undefined };
    });
  }

  /**
   * Retires the active version (freed once its requests end); swaps queued after this load
   * nothing. Resolves once a load under way has ended and what it loaded is disposed.
   */
  async close(): Promise<void> {
    this.closed = true;
    this.active?.retire();
    this.active = undefined;
    this.activePublished = undefined;
    await this.queue;
  }

  /** Runs `swap` after the swaps queued before it. */
  private enqueue(swap: () => Promise<SwapOutcome> | SwapOutcome): Promise<SwapOutcome> {
    const run = this.queue.then(swap);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** `catalogReload`: the active publication loaded again with its grown catalog ({@link reloadCatalog}). */
  private async doSwap(published: PublishedModel, retry: boolean, catalogReload = false): Promise<SwapOutcome> {
    if (this.closed) return { kind: 'unchanged', version: undefined };
    const from = this.active?.published;
    if (from && from.version === published.version && !catalogReload) return { kind: 'unchanged', version: from.version };
    if (this.failed.has(published.version) && !retry) return { kind: 'unchanged', version: from?.version };
    const started = performance.now();
    let next: ModelVersion;
    try {
      next = await this.load(published);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      if (catalogReload) {
        this.failedCatalogReloads++;
        log.error({ err: error, version: published.version, checkpointId: published.checkpointId }, 'the grown catalog could not be loaded; the active version keeps serving its catalog');
        return { kind: 'failed', version: published.version, error: message };
      }
      this.failed.add(published.version);
      this.failedSwaps++;
      log.error({ err: error, version: published.version, checkpointId: published.checkpointId, serving: from?.version }, 'model version rejected; the current version keeps serving');
      this.instrumentation?.emit('serving.swap_failed', { version: published.version, checkpointId: published.checkpointId, error: message });
      return { kind: 'failed', version: published.version, error: message };
    }
    this.failed.delete(published.version);
    if (this.closed) {
      log.info({ version: published.version, checkpointId: published.checkpointId }, 'model version loaded after the holder closed: disposed');
      next.retire();
      return { kind: 'unchanged', version: undefined };
    }
    const old = this.active;
    this.active = next;
    this.activePublished = published;
    old?.retire();
    this.swaps++;
    const ms = performance.now() - started;
    log.info({ from: from?.version, to: published.version, checkpointId: published.checkpointId, ms: Math.round(ms), steps: next.loadTimings, oldInFlight: old?.inFlight ?? 0 }, 'model version swapped');
    this.instrumentation?.emit('serving.swapped', { from: from?.version ?? 0, to: published.version, checkpointId: published.checkpointId, durationMs: ms });
    return { kind: 'swapped', from: from?.version, to: published.version };
  }
}
