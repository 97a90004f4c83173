import type { ArtifactStore } from '../infra/artifacts';
import { createLogger } from '../logging';
import { latestGrownCatalog } from '../trainer';
import type { ModelHolder, SwapOutcome } from './modelHolder';
import type { ModelVersion } from './modelVersion';
import { isPrepared } from './prepared';

const log = createLogger('serving.catalog');

/** What one {@link CatalogFollower.check} did. */
export type CatalogCheck =
  /** Nothing to load: no model yet, the active version scores the catalog its checkpoint would load, or a check was under way. */
  | { readonly kind: 'current' }
  /** A grown catalog waits for its trainer's prepare (up to `prepareWaitMs`), or for the retry after a failed load. */
  | { readonly kind: 'waiting'; readonly semanticIds: string; readonly until: 'prepared' | 'retry' }
  | { readonly kind: 'reloaded'; readonly semanticIds: string; readonly outcome: SwapOutcome };

export interface CatalogFollowerOptions {
  /** How long a grown catalog is waited for to be prepared by a trainer before it is loaded anyway (serving.catalogPrepareWaitMs). */
  readonly prepareWaitMs: number;
  /** Wait before the first retry of a catalog whose load failed; doubled after each failure of it, up to 5 minutes. */
  readonly retryMs: number;
  readonly now?: () => number;
}

/** Longest wait between retries of a grown catalog that fails to load. */
const RETRY_MAX_MS = 5 * 60_000;

/**
 * Keeps the active model on the catalog its checkpoint loads: new items between rebuilds
 * (`rebuild --new-items`, the live trainer) write a semantic-ID version grown from the model's
 * own, and the active publication is loaded again with it ({@link ModelHolder.reloadCatalog}), no
 * retraining. The catalog compared is the one the loader would choose (`latestGrownCatalog` of the
 * checkpoint's semantic IDs: jobs/servable.ts), not the store's latest: a full rebuild of another
 * lineage, or any catalog under a SASRec model (which keeps its trained catalog), loads nothing new.
 *
 * A trainer that prepares serving makes the grown catalog's encoder, item table and indexes off
 * the server's event loop; its prepare is waited for (serving/prepared.ts: the marker comes last)
 * up to `prepareWaitMs`. A catalog whose load fails is tried again after a backoff.
 */
export class CatalogFollower {
  /** The catalog the active checkpoint loads, for the store's latest semantic IDs it was worked out under. */
  private target: { readonly checkpointId: string; readonly latest: string; readonly semanticIds: string | undefined } | undefined;
  private seen: { readonly semanticIds: string; readonly at: number } | undefined;
  private failure: { readonly semanticIds: string; readonly failures: number; readonly retryAt: number } | undefined;
  private running: Promise<CatalogCheck> | undefined;

  constructor(
    private readonly store: ArtifactStore,
    private readonly models: ModelHolder,
    private readonly options: CatalogFollowerOptions,
  ) {}

  /** Loads the active model again when its catalog grew (a check already under way is joined, not doubled). */
  check(): Promise<CatalogCheck> {
    this.running ??= this.run().finally(() => (this.running = undefined));
    return this.running;
  }

  private async run(): Promise<CatalogCheck> {
    const current = this.models.current;
    if (!current) return { kind: 'current' };
    const wanted = await this.catalogOf(current);
    if (!wanted || wanted === current.servable.lineage.semanticIds) return { kind: 'current' };
    const now = (this.options.now ?? Date.now)();
    if (this.failure?.semanticIds === wanted && now < this.failure.retryAt) return { kind: 'waiting', semanticIds: wanted, until: 'retry' };
    if (this.seen?.semanticIds !== wanted) this.seen = { semanticIds: wanted, at: now };
    if (now - this.seen.at < this.options.prepareWaitMs && !(await isPrepared(this.store, current.published.checkpointId, wanted))) {
      return { kind: 'waiting', semanticIds: wanted, until: 'prepared' };
    }
    const outcome = await this.models.reloadCatalog();
    if (outcome.kind === 'failed') {
      const failures = this.failure?.semanticIds === wanted ? this.failure.failures + 1 : 1;
      const waitMs = Math.min(RETRY_MAX_MS, this.options.retryMs * 2 ** (failures - 1));
      this.failure = { semanticIds: wanted, failures, retryAt: (this.options.now ?? Date.now)() + waitMs };
      log.warn({ semanticIds: wanted, failures, retryInMs: waitMs, error: outcome.error }, 'the grown catalog could not be loaded: tried again later');
    } else if (outcome.kind === 'swapped') {
      this.failure = undefined;
      log.info({ semanticIds: wanted, outcome }, 'the catalog grew: the active model was loaded again with it');
    }
    return { kind: 'reloaded', semanticIds: wanted, outcome };
  }

  /**
   * The semantic IDs `version`'s checkpoint loads with the `latest` catalog: the newest grown from
   * its own (CCFRec); undefined for a model that keeps its trained catalog (SASRec, or one trained
   * without semantic IDs). Worked out again only when the store's latest semantic IDs or the
   * checkpoint change (a grown version is the store's latest when it is written).
   */
  private async catalogOf(version: ModelVersion): Promise<string | undefined> {
    const { servable, published } = version;
    const own = servable.manifest.inputs.find((i) => i.role === 'semantic_ids')?.artifactId;
    if (servable.modelType !== 'ccfrec' || !own) return undefined;
    const latest = (await this.store.latest('semantic_ids'))?.id;
    if (!latest) return undefined;
    if (this.target?.checkpointId !== published.checkpointId || this.target.latest !== latest) {
      this.target = { checkpointId: published.checkpointId, latest, semanticIds: (await latestGrownCatalog(this.store, own)).semanticIds };
    }
    return this.target.semanticIds;
  }
}
