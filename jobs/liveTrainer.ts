import { randomBytes } from 'node:crypto';
import { ArtifactError, ConfigError, RegistryError } from '../errors';
import { archiveMarks, BELOW_OFFSETS, marksParams, WITHIN_MARKS } from '../datasets/archive';
import { ArtifactStore } from '../infra/artifacts';
import { IngestArchive, openClickHouse, type ClickHouse } from '../infra/clickhouse';
import { codeNewItems } from '../quantizer/rebuild';
import type { ModelRegistry, PublishedModel } from '../infra/registry';
import { initTf } from '../infra/tf';
import type { Instrumentation } from '../instrumentation';
import { sleep } from '../infra/retry';
import { createLogger } from '../logging';
import { Random } from '../random';
import { IncrementalTrainer, catalogDrift, examplesFrom, latestGrownCatalog, saveCheckpoint, type CatalogDrift, type MicroEpochResult, type StreamInteraction } from '../trainer';
import { firstModelTrainer, trainCodingNewItems } from './bootstrap';
import { LiveTrainerConfig, type AppConfig, type LiveRebuildConfig } from './config';
import { microEpochRow, type MicroEpochRowInput } from './incremental';
import { publishCheckpoint } from './publish';
import { loadServableModel, type ServableModel } from './servable';
import { runRebuildJob } from './rebuild';
import { recordSemanticIdBuilds, semanticIdBuildRow } from './semanticIdRows';
import { openTrainingSink, type TrainingSink } from './sink';

const log = createLogger('jobs.live');

export interface LiveTrainerOptions {
  readonly config: AppConfig;
  readonly registry: ModelRegistry;
  readonly live?: LiveTrainerConfig;
  /** Runs once the gate has passed, before the registry names the checkpoint live (serving's prepare). */
  readonly prepare?: (checkpointId: string) => Promise<unknown>;
  /** Write one micro_epochs row per micro-epoch (default true). */
  readonly writeRows?: boolean;
  readonly instrumentation?: Instrumentation;
  /**
   * Called as a long look makes progress (each micro-epoch of a rebuilt candidate catching up on a
   * backlog): a heartbeat, so that a look that goes on is told from one that hangs.
   */
  readonly onProgress?: (what: string) => void;
}

/** What one look at the archive did. */
export interface LiveStep {
  /** Interactions read since the stream position (0: nothing new, no micro-epoch). */
  readonly read: number;
  /** Interactions of items the model does not score (left out). */
  readonly unknownItems: number;
  /** Catalog items that joined the model before this look (coded with the existing codebooks). */
  readonly newItems: number;
  readonly result?: MicroEpochResult;
  /** The checkpoint written for an accepted micro-epoch, and the version it was published as. */
  readonly checkpointId?: string;
  readonly published?: PublishedModel;
  /** Why nothing was published (refused by the gate, or another publisher won the race). */
  readonly notPublished?: string;
  /** A full rebuild started, scored beside the live model, or decided at this look. */
  readonly rebuild?: RebuildProgress;
}

/** Where a full rebuild is (see {@link LiveTrainer}): started in the background, scored on a window, or decided. */
export type RebuildProgress =
  | { readonly phase: 'started'; readonly rebuildId: string; readonly trigger: 'schedule' | 'drift'; readonly reason: string }
  | { readonly phase: 'training'; readonly rebuildId: string; readonly seconds: number }
  | { readonly phase: 'shadow'; readonly rebuildId: string; readonly caughtUp: number; readonly gateExamples: number; readonly live: number; readonly candidate: number }
  | { readonly phase: 'decided'; readonly rebuildId: string; readonly decision: 'published' | 'refused' | 'failed'; readonly detail: string; readonly version?: number };

interface ArchivedInteraction {
  readonly event_id: string;
  readonly user_id: string;
  readonly item_id: string;
  readonly ts: string;
  readonly key: string;
  readonly offset: string;
}

/**
 * While a look runs, a rebuilt candidate training in the background waits this long between two
 * of its steps (a step is ~0.1-0.3 s on 2 cores): the look keeps most of the thread. Measured with
 * `bench freshness --rebuild-every 30` (docs/live-loop.md).
 */
const REBUILD_SLICE_MS = 500;

/** At most this many of a user's latest examples seed the replay reservoir (bounds the read at start). */
const REPLAY_PER_USER = 200;

/** Each user's next-item examples: every item after the first, with the (at most `window`) items before it. */
function* examplesOfSequences(sequences: ReadonlyArray<readonly [string, readonly number[]]>, window: number): Generator<{ history: readonly number[]; target: number }> {
  for (const [, items] of sequences) for (let i = 1; i < items.length; i++) yield { history: items.slice(Math.max(0, i - window), i), target: items[i] as number };
}

/**
 * A model with its trainer, where it is in the stream, and what its lineage has seen: the live
 * one, or a rebuilt candidate that is scored beside it.
 */
interface LineageState {
  servable: ServableModel;
  trainer: IncrementalTrainer;
  rng: Random;
  /** Per archive partition, the first offset this model has not seen. */
  offsets: Record<string, number>;
  /** The checkpoint the next one continues (its parent), and what the lineage has seen. */
  lineage: { parent: string; latestEventMs: number; trainExamples: number };
}

/** A full rebuild in progress: training in the background, then scored beside the live model. */
interface Rebuild {
  readonly id: string;
  readonly trigger: 'schedule' | 'drift';
  readonly reason: string;
  readonly startedAt: number;
  readonly abort: AbortController;
  /** Settles when the candidate is trained (never rejects: a failure is its value). */
  readonly training: Promise<TrainedCandidate | { readonly failed: string }>;
  /** Whether `training` has settled. */
  settled: boolean;
  trained?: TrainedCandidate;
  /** Loaded and continued from its checkpoint once trained (at `loadedAt`). */
  state?: LineageState;
  loadedAt?: number;
  caughtUp: number;
  gate: { windows: number; liveExamples: number; liveSum: number; candidateExamples: number; candidateSum: number };
}

interface TrainedCandidate {
  readonly checkpointId: string;
  readonly semanticIds?: string;
  readonly trainSeconds: number;
}

/**
 * Why a catalog has drifted from its codebooks past `r`'s thresholds, one reason per threshold
 * crossed (empty: it has not, or fewer than `minNewItems` items were coded since the rebuild):
 * the new items' reconstruction error against the rebuild's, the share of the catalog coded
 * without being fitted on, the rise of the code collision rate.
 */
export function driftReasons(drift: CatalogDrift, r: Pick<LiveRebuildConfig, 'minNewItems' | 'relMseRatio' | 'newItemShare' | 'collisionIncrease'>): string[] {
  if (drift.newItems < r.minNewItems) return [];
  const share = drift.newItems / Math.max(1, drift.items);
  const ratio = drift.newItemsRelMse !== undefined && drift.rebuild.relMse ? drift.newItemsRelMse / drift.rebuild.relMse : undefined;
  const collisions = drift.collisionRate - drift.rebuild.collisionRate;
  const over: string[] = [];
  if (ratio !== undefined && ratio > r.relMseRatio) over.push(`new items' relative error ${drift.newItemsRelMse?.toFixed(4)} is ${ratio.toFixed(2)}x the rebuild's ${drift.rebuild.relMse?.toFixed(4)} (threshold ${r.relMseRatio}x)`);
  if (share > r.newItemShare) over.push(`${drift.newItems} of ${drift.items} items (${(100 * share).toFixed(1)}%) were coded after the codebooks were fitted (threshold ${(100 * r.newItemShare).toFixed(1)}%)`);
  if (collisions > r.collisionIncrease) over.push(`collision rate ${drift.collisionRate.toFixed(4)} vs ${drift.rebuild.collisionRate.toFixed(4)} at the rebuild (threshold +${r.collisionIncrease})`);
  return over;
}

/**
 * The live loop's trainer: it continues the live model from where its checkpoint is in the
 * stream. A checkpoint names, per archive partition, the first offset it has not seen (and the
 * examples it saw but did not train yet); the trainer reads the interactions from there (the
 * ClickHouse archive, which ingest fills from Kafka), runs a micro-epoch (prequential score,
 * fine-tune from the checkpoint's optimizer state, gate on held-out recent events), and when the
 * gate passes writes a checkpoint with the new position and publishes it. A trainer killed at any
 * point starts again from the live checkpoint's position: events after it are read again and
 * trained into the next publication, none before it is trained twice into the published lineage.
 *
 * Full rebuilds (`live.rebuild`): when the live lineage's codebooks are older than the schedule,
 * or the items coded with them since drift (reconstruction error, share of the catalog, collision
 * rate), the trainer rebuilds the semantic IDs from the archived catalog and trains a fresh model
 * from the archive in the background, on this thread between its micro-epochs (the training loop
 * yields). The candidate, whose checkpoint records where it stopped reading, first trains on what
 * the live model has seen since (catch-up micro-epochs), then runs the same micro-epochs as the
 * live model on the next windows; a window counts for the gate when neither model has trained on
 * any of its events. Once both have been scored on `gateExamples` examples, the candidate is
 * published (and continued from then on) if its prequential gate metric is not worse than the
 * live model's by more than `gateMargin`; otherwise it is dropped. Either way the decision and
 * its numbers are a `live_rebuilds` row. A trainer killed meanwhile loses only the candidate.
 */
export class LiveTrainer {
  private state: LineageState;
  private stepCount = 0;
  /** Catalog rows in the archive at the last look (new items are coded when it changes). */
  private catalogSeen = -1;
  /** Set while something writes the item registry and semantic IDs (a new-items coding, a full rebuild). */
  private catalogBusy = false;
  /** Settles when the last queued holder of the catalog lets go (see holdCatalog). */
  private catalogQueue: Promise<void> = Promise.resolve();
  private rebuild: Rebuild | undefined;
  /** No rebuild starts before this (epoch ms): after a refused or failed one, and the schedule's reference for a lineage without codebooks. */
  private rebuildNotBefore = 0;
  private readonly startedAt = Date.now();
  private driftOf: { readonly semanticIds: string; readonly drift: CatalogDrift } | undefined;
  /** Settles when the look in progress ends (undefined between looks): a rebuilt candidate's training waits for it. */
  private stepping: Promise<void> | undefined;
  private closed = false;
  /** A look failed part-way: the state in memory may have absorbed or trained part of its window. */
  private stale = false;

  private constructor(
    private readonly options: LiveTrainerOptions,
    private readonly settings: LiveTrainerConfig,
    private readonly ch: ClickHouse,
    private readonly store: ArtifactStore,
    private readonly sink: TrainingSink,
    state: LineageState,
    private live: PublishedModel,
    readonly runId: string,
  ) {
    this.state = state;
  }

  private static lineageOf(servable: ServableModel): LineageState['lineage'] {
    const { latestEventMs, trainExamples } = servable.settings.dataWatermark;
    return { parent: servable.checkpointId, latestEventMs, trainExamples };
  }

  /** Opens the archive and continues the registry's live model from its stream position. */
  static async start(options: LiveTrainerOptions): Promise<LiveTrainer> {
    await initTf();
    const settings = options.live ?? LiveTrainerConfig.parse({});
    const store = new ArtifactStore(options.config.artifacts.dir);
    const ch = await openClickHouse(options.config.clickhouse);
    let sink: TrainingSink | undefined;
    try {
      sink = await openTrainingSink(options.config, options.writeRows ?? true);
      const runId = `live-${new Date().toISOString().replace(/[-:.]/g, '').slice(0, 15)}-${randomBytes(3).toString('hex')}`;
      const { live, state } = await LiveTrainer.continueLive(options, settings, store, ch);
      log.info({ runId, version: live.version, checkpointId: live.checkpointId, offsets: state.offsets }, 'live trainer started');
      return new LiveTrainer(options, settings, ch, store, sink, state, live, runId);
    } catch (error) {
      await sink?.close();
      await ch.close();
      throw error;
    }
  }

  /** The registry's live version, continued from its stream position. */
  private static async continueLive(
    options: LiveTrainerOptions,
    settings: LiveTrainerConfig,
    store: ArtifactStore,
    ch: ClickHouse,
  ): Promise<{ live: PublishedModel; state: LineageState }> {
    const live = await options.registry.live();
    if (!live) throw new ConfigError('the live trainer needs a live model: train one on the archive (`streamrec train --from-clickhouse`) and publish it (`streamrec publish`)');
    return { live, state: await LiveTrainer.continueCheckpoint(options, settings, store, ch, live.checkpointId) };
  }

  /** A checkpoint's model, its optimizer, generator and stream position, and the histories up to that position. */
  private static async continueCheckpoint(
    options: LiveTrainerOptions,
    settings: LiveTrainerConfig,
    store: ArtifactStore,
    ch: ClickHouse,
    checkpointId: string,
  ): Promise<LineageState> {
    const servable = await loadServableModel(store, checkpointId, { catalog: 'latest', withTrainingState: true });
    let trainer: IncrementalTrainer | undefined;
    try {
      const state = servable.trainingState;
      if (!state?.stream) {
        throw new ArtifactError(`checkpoint ${checkpointId} records no stream position: train the first model on the archive (\`streamrec train --from-clickhouse\`), then the live loop continues it`);
      }
      const rng = state.rng ? Random.restore(state.rng) : new Random(options.config.trainer.train.seed);
      trainer = new IncrementalTrainer({
        model: servable.model,
        maxHistoryLength: servable.maxHistoryLength,
        micro: settings.micro,
        train: options.config.trainer.train,
        rng,
        ...(state.optimizer ? { optimizer: state.optimizer } : {}),
      });
      const sequences = await LiveTrainer.sequencesBelow(ch, state.stream.offsets, servable);
      trainer.seed(
        sequences.map(([user, items]) => [user, items.slice(-servable.maxHistoryLength)] as const),
        undefined,
        [examplesFrom(state.stream.pending)],
      );
      // What the model was trained on is replayed from the start (also after a restart): a
      // uniform sample of the examples below its stream position, rebuilt from the archive.
      trainer.seedReplay(examplesOfSequences(sequences, servable.maxHistoryLength));
      return { servable, trainer, rng, offsets: { ...state.stream.offsets }, lineage: LiveTrainer.lineageOf(servable) };
    } catch (error) {
      // The optimizer's moments too: a reload after a failed look fails this way while ClickHouse is away.
      trainer?.dispose();
      servable.dispose();
      throw error;
    }
  }

  private static disposeState(state: LineageState): void {
    state.trainer.dispose();
    state.servable.dispose();
  }

  /**
   * Every user's items in time order (dense ids; the latest `maxHistoryLength + REPLAY_PER_USER`)
   * among the interactions below `offsets`: the histories the trainer continues, and the examples
   * its replay reservoir is seeded with.
   */
  private static async sequencesBelow(ch: ClickHouse, offsets: Record<string, number>, servable: ServableModel): Promise<Array<[string, number[]]>> {
    const L = servable.maxHistoryLength + REPLAY_PER_USER;
    const rows = await ch.query<{ user_id: string; items: string[] }>(
      `SELECT user_id, arraySlice(groupArray(item_id), -{L:UInt32}) AS items
       FROM (SELECT user_id, item_id, ts, event_id FROM ${ch.table('interactions')} FINAL WHERE ${BELOW_OFFSETS} ORDER BY user_id, ts, event_id)
       GROUP BY user_id`,
      { offsets, L },
    );
    return rows.map((r) => [r.user_id, r.items.map((id) => servable.items.denseId(id)).filter((d): d is number => d !== undefined)]);
  }

  /** Examples in the replay reservoir (seeded from the archive at start, then every example trained). */
  get replaySize(): number {
    return this.state.trainer.replaySize;
  }

  /** The live version this trainer continues. */
  get liveVersion(): PublishedModel {
    return this.live;
  }

  /** Per archive partition, the first offset not read yet. */
  get streamOffsets(): Readonly<Record<string, number>> {
    return this.state.offsets;
  }

  /** Whether a full rebuild is in progress (training, catching up or being scored). */
  get rebuilding(): boolean {
    return this.rebuild !== undefined;
  }

  /** Settles when the rebuild in progress has trained its candidate (or failed to); at once without one. */
  async whenRebuildTrained(): Promise<void> {
    await this.rebuild?.training;
  }

  /** Runs `work` once nothing else writes the item registry and semantic IDs (waits for the other writer). */
  private async holdCatalog<T>(work: () => Promise<T>): Promise<T> {
    // A queue, not a poll: each holder waits for the one before it and hands over as it ends.
    const before = this.catalogQueue;
    let handOver!: () => void;
    this.catalogQueue = new Promise<void>((resolve) => (handOver = resolve));
    await before;
    this.catalogBusy = true;
    try {
      return await work();
    } finally {
      this.catalogBusy = false;
      handOver();
    }
  }

  /**
   * The archived catalog's items that `semanticIds`' lineage lacks, coded with its codebooks onto
   * the newest catalog grown from it (the store's latest without one), while no one else writes
   * the registry and semantic IDs.
   */
  private codeNewItemsOnto(semanticIds: string | undefined): ReturnType<typeof codeNewItems> {
    return this.holdCatalog(async () =>
      codeNewItems({
        events: await new IngestArchive(this.ch).readItems(),
        store: this.store,
        registryFile: this.options.config.artifacts.registryFile,
        features: this.options.config.features,
        job: 'streamrec trainer',
        // Read once the catalog lock is held: another process may have grown the lineage meanwhile.
        ...(semanticIds ? { base: () => latestGrownCatalog(this.store, semanticIds) } : {}),
      }),
    );
  }

  /**
   * Items archived in the catalog since the model's catalog (CCFRec): coded with the existing
   * codebooks (`rebuild --new-items`: embedded with the stored encoder and PCA, no refit) and
   * joined to the model, which scores them from their codes and text; its weights and optimizer
   * are those of the lineage's last checkpoint, which the model in memory always equals (a
   * refused micro-epoch goes back to it). SASRec learns one embedding per item: its new items wait
   * for a retrained model. Returns how many items joined.
   */
  private async growCatalog(): Promise<number> {
    if (this.state.servable.modelType !== 'ccfrec') return 0;
    const [row] = await this.ch.query<{ n: string }>(`SELECT count() AS n FROM ${this.ch.table('items')} FINAL`);
    const archived = Number(row?.n ?? 0);
    if (archived === this.catalogSeen) return 0;
    // Grown from the model's own catalog: a full rebuild elsewhere in the store (a manual
    // `streamrec rebuild`, this trainer's candidate) has other codebooks and another projection.
    const own = this.state.servable.lineage.semanticIds;
    // A full rebuild writing the registry and its catalog: look again at the next step.
    if (this.catalogBusy) return 0;
    const coded = await this.codeNewItemsOnto(own);
    this.catalogSeen = archived;
    if (!coded) return 0;
    await recordSemanticIdBuilds(this.options.config, [semanticIdBuildRow(coded.semanticIds, 'new_items')], this.sink.writer);
    const { state } = this;
    const grown = await loadServableModel(this.store, state.lineage.parent, { catalog: 'latest', withTrainingState: true });
    if (grown.items.itemCount <= state.servable.items.itemCount) {
      grown.dispose();
      return 0;
    }
    state.trainer.replaceModel(grown.model, grown.trainingState?.optimizer);
    const joined = grown.items.itemCount - state.servable.items.itemCount;
    state.servable.dispose();
    state.servable = grown;
    log.info({ joined, items: grown.items.itemCount, semanticIds: coded.semanticIds.id }, 'new catalog items joined the model');
    // Servers load the live version again with the grown catalog: what that takes (the ONNX
    // encoder, the item table, the indexes) is made here, off their event loops; they wait for it
    // (serving.catalogPrepareWaitMs) before making it themselves.
    if (this.options.prepare) {
      await this.options.prepare(this.live.checkpointId).catch((error: unknown) =>
        log.warn({ checkpointId: this.live.checkpointId, err: (error as Error).message }, 'preparing the live version for the grown catalog failed: servers make it themselves'),
      );
    }
    return joined;
  }

  /**
   * The next `limit` interactions at or above `offsets` (a prefix of each partition, so that a
   * position stays exact, shared fairly between the partitions known), in partition order. Only
   * below the archive marks: rows of a flush still in progress (or cut short by a crash) can be
   * visible before earlier ones, and moving the position past a gap would skip its rows for good.
   */
  private async readFrom(offsets: Record<string, number>, limit: number): Promise<ArchivedInteraction[]> {
    const perPartition = Math.max(1, Math.ceil(limit / Math.max(1, Object.keys(offsets).length)));
    const marks = await archiveMarks(this.ch);
    return this.ch.query<ArchivedInteraction>(
      `SELECT event_id, user_id, item_id, toUnixTimestamp64Milli(ts) AS ts, concat(topic, '/', toString(partition)) AS key, offset
       FROM ${this.ch.table('interactions')} FINAL WHERE NOT (${BELOW_OFFSETS}) AND ${WITHIN_MARKS}
       ORDER BY topic, partition, offset LIMIT {perPartition:UInt32} BY topic, partition LIMIT {limit:UInt32}`,
      { offsets, perPartition, limit, ...marksParams(marks) },
    );
  }

  /** Interactions archived past the stream position (below the marks), counted up to `cap` (without FINAL: copies not merged yet count too). */
  behind(cap: number): Promise<number> {
    return this.archivedPast(this.state.offsets, cap);
  }

  /** Interactions archived past `offsets` (below the marks), counted up to `cap` (what a waiting trainer checks for wakeEvents). */
  private async archivedPast(offsets: Record<string, number>, cap: number): Promise<number> {
    const marks = await archiveMarks(this.ch);
    const [row] = await this.ch.query<{ n: string }>(
      `SELECT count() AS n FROM (SELECT 1 FROM ${this.ch.table('interactions')} WHERE NOT (${BELOW_OFFSETS}) AND ${WITHIN_MARKS} LIMIT {cap:UInt32})`,
      { offsets, cap, ...marksParams(marks) },
    );
    return Number(row?.n ?? 0);
  }

  /** `rows` in time order as events of `state`'s model (items it does not score are counted and left out). */
  private static eventsOf(state: LineageState, rows: readonly ArchivedInteraction[]): { events: StreamInteraction[]; unknownItems: number } {
    const ordered = [...rows].sort((a, b) => Number(a.ts) - Number(b.ts) || (a.event_id < b.event_id ? -1 : a.event_id > b.event_id ? 1 : 0));
    const events: StreamInteraction[] = [];
    let unknownItems = 0;
    for (const r of ordered) {
      const item = state.servable.items.denseId(r.item_id);
      if (item === undefined) unknownItems++;
      else events.push({ userId: r.user_id, item, timestampMs: Number(r.ts) });
    }
    return { events, unknownItems };
  }

  /** `offsets` moved past `rows`. */
  private static advanced(offsets: Record<string, number>, rows: readonly ArchivedInteraction[]): Record<string, number> {
    const next = { ...offsets };
    for (const r of rows) next[r.key] = Math.max(next[r.key] ?? 0, Number(r.offset) + 1);
    return next;
  }

  /** A micro-epoch of `state`'s model on `rows`; its position moves past them (its lineage grows at `checkpoint` or `absorb`). */
  private static async microEpoch(state: LineageState, rows: readonly ArchivedInteraction[]): Promise<{ result: MicroEpochResult; unknownItems: number }> {
    const { events, unknownItems } = LiveTrainer.eventsOf(state, rows);
    const result = await state.trainer.microEpoch(events);
    state.offsets = LiveTrainer.advanced(state.offsets, rows);
    return { result, unknownItems };
  }

  /**
   * What a kept micro-epoch adds to `state`'s lineage without a checkpoint of its own (a
   * candidate's catch-up and shadow windows; its checkpoint at publication counts the last).
   */
  private static absorb(state: LineageState, result: MicroEpochResult): void {
    state.lineage = { ...state.lineage, ...LiveTrainer.seenAfter(state, result) };
  }

  /** What `state`'s lineage has seen once `result` is counted (only when its fine-tune was kept). */
  private static seenAfter(state: LineageState, result: MicroEpochResult): { latestEventMs: number; trainExamples: number } {
    const { latestEventMs, trainExamples } = state.lineage;
    if (!result.accepted || result.steps === 0) return { latestEventMs, trainExamples };
    return { latestEventMs: Math.max(latestEventMs, result.windowEndMs), trainExamples: trainExamples + result.trained };
  }

  /** One look at the archive: a micro-epoch over what arrived since the stream position (at most maxEvents), checkpointed and published when the gate passes. */
  async step(): Promise<LiveStep> {
    if (this.closed) throw new Error('live trainer: step after close');
    if (this.stale) {
      await this.reload('a look failed: the trainer continues the live version from its checkpoint');
      this.stale = false;
    }
    // A candidate training in the background slows down to a step per REBUILD_SLICE_MS until
    // this look is done: the live model's freshness comes first.
    let done = (): void => undefined;
    this.stepping = new Promise<void>((resolve) => (done = resolve));
    try {
      return await this.look();
    } finally {
      this.stepping = undefined;
      done();
    }
  }

  private async look(): Promise<LiveStep> {
    // A candidate is picked up at the first look that starts after it is trained.
    const trained = this.rebuild?.settled === true;
    const newItems = await this.growCatalog();
    // A rebuild starts before the window is read: it trains below the position the live model is at now.
    const started = await this.considerRebuild();
    const rows = await this.readFrom(this.state.offsets, this.settings.maxEvents);
    if (rows.length < this.settings.minEvents) return { read: rows.length, unknownItems: 0, newItems, ...(started ? { rebuild: started } : {}) };
    const before = this.state.offsets;
    // The lineage this window went into (a publication lost to another publisher reloads this.state).
    const state = this.state;
    const { result, unknownItems } = await LiveTrainer.microEpoch(state, rows);
    const index = this.stepCount++;
    this.options.instrumentation?.emit('trainer.micro_epoch_end', { runId: this.runId, epoch: index, samples: result.trained, loss: result.loss, durationMs: result.seconds * 1000 });
    let step: LiveStep = { read: rows.length, unknownItems, newItems, result };
    if (result.accepted && result.steps > 0) {
      const checkpointId = await this.checkpoint(state, result);
      step = { ...step, checkpointId, ...(await this.publish(checkpointId, result)) };
    } else {
      step = { ...step, notPublished: result.steps === 0 ? 'nothing to train' : `refused by the gate: ${this.settings.micro.gateMetric} ${result.candidateGate.toFixed(4)} vs live ${result.liveGate.toFixed(4)} on ${result.holdout} held-out events` };
    }
    this.writeRow('live', index, result, state, step);
    log.info(
      { runId: this.runId, microEpoch: index, read: rows.length, examples: result.examples, steps: result.steps, accepted: result.accepted, version: step.published?.version, seconds: Math.round(result.seconds * 10) / 10 },
      step.published ? 'micro-epoch published' : 'micro-epoch not published',
    );
    const rebuild = started ?? (trained ? await this.shadow(rows, before, result, index) : this.rebuildProgress());
    return rebuild ? { ...step, rebuild } : step;
  }

  /**
   * Saves `state`'s model with its optimizer, generator and stream position, its parent the
   * lineage's last checkpoint (which it becomes); `result`, the last micro-epoch, counts in what
   * the lineage has seen when its fine-tune was kept.
   */
  private async checkpoint(state: LineageState, result: MicroEpochResult): Promise<string> {
    const { servable } = state;
    const seen = LiveTrainer.seenAfter(state, result);
    const backend = await initTf();
    const artifact = await saveCheckpoint(this.store, servable.model, {
      ...(servable.sideInfo ? { sideInfo: servable.sideInfo } : {}),
      dataWatermark: {
        dataset: `clickhouse:${this.ch.database}`,
        protocol: 'micro-epoch on the interactions archived since the parent checkpoint\'s stream position',
        ...seen,
      },
      backend: backend.backend,
      runId: this.runId,
      epoch: result.microEpoch,
      ...(servable.textPrior ? { textPrior: servable.textPrior } : {}),
      trainingState: { optimizer: state.trainer.optimizerState(), rng: state.rng.state(), stream: { offsets: { ...state.offsets }, pending: state.trainer.pendingRows() } },
      metrics: { prequential: result.prequential?.metrics ?? {}, holdout: { live: result.liveHoldout, candidate: result.candidateHoldout, users: result.holdout } },
      job: 'streamrec trainer',
      parent: state.lineage.parent,
    });
    state.lineage = { parent: artifact.id, ...seen };
    return artifact.id;
  }

  private async publish(checkpointId: string, result: MicroEpochResult): Promise<Pick<LiveStep, 'published' | 'notPublished'>> {
    const metric = this.settings.micro.gateMetric;
    return this.publishVersion(
      checkpointId,
      { split: 'stream', metrics: result.holdout > 0 ? result.candidateHoldout : (result.prequential?.metrics ?? {}), users: result.holdout },
      `micro-epoch ${result.microEpoch} of ${this.runId}: ${metric} ${Number.isNaN(result.liveGate) ? 'n/a' : result.liveGate.toFixed(4)} -> ${Number.isNaN(result.candidateGate) ? 'n/a' : result.candidateGate.toFixed(4)} on ${result.holdout} held-out recent events`,
    );
  }

  /** Publishes `checkpointId` as the next live version; a race lost to another publisher continues that one's version. */
  private async publishVersion(checkpointId: string, evaluation: { split: 'stream'; metrics: Record<string, number>; users: number }, reason: string): Promise<Pick<LiveStep, 'published' | 'notPublished'>> {
    try {
      const outcome = await publishCheckpoint({
        registry: this.options.registry,
        store: this.store,
        checkpoint: checkpointId,
        evaluation,
        reason,
        expectedLiveVersion: this.live.version,
        ...(this.options.prepare ? { prepare: this.options.prepare } : {}),
        ...(this.options.instrumentation ? { instrumentation: this.options.instrumentation } : {}),
      });
      if (!outcome.published) return { notPublished: outcome.reason };
      this.live = outcome.model;
      return { published: outcome.model };
    } catch (error) {
      if (!(error instanceof RegistryError)) throw error;
      // Another publisher made a version live meanwhile: continue that one instead.
      log.warn({ err: error.message }, 'the live version changed under the trainer: continuing the new live version');
      await this.reload();
      return { notPublished: `the live version changed meanwhile (${error.message}); continuing version ${this.live.version}` };
    }
  }

  /** Drops this model (and a rebuild in progress) and continues the registry's live version from its stream position. */
  async reload(why = 'another publisher changed the live version'): Promise<void> {
    const { live, state } = await LiveTrainer.continueLive(this.options, this.settings, this.store, this.ch);
    LiveTrainer.disposeState(this.state);
    this.state = state;
    this.live = live;
    this.catalogSeen = -1;
    await this.dropRebuild(why);
  }

  private writeRow(method: 'live' | 'rebuild', index: number, result: MicroEpochResult, state: LineageState, step?: Pick<LiveStep, 'checkpointId' | 'published'>): void {
    const row: MicroEpochRowInput = {
      method,
      window: index,
      windowStartMs: result.windowStartMs,
      windowEndMs: result.windowEndMs,
      watermark: state.offsets,
      events: result.events,
      examples: result.examples,
      metrics: result.prequential?.metrics ?? {},
      trainSeconds: result.computeSeconds,
      steps: result.steps,
      trainSamples: result.samples,
      micro: result,
    };
    this.sink.writer?.write('micro_epochs', [
      microEpochRow(this.runId, { dataset: `clickhouse:${this.ch.database}`, model: state.servable.modelType }, row, { metric: this.settings.micro.gateMetric, margin: this.settings.micro.gateMargin }, { checkpointId: step?.checkpointId, version: step?.published?.version }),
    ]);
  }

  // ---- full rebuilds -------------------------------------------------------------------------

  /** The drift of the live model's catalog from its codebooks (undefined without semantic IDs); read again when the catalog changed. */
  private async drift(): Promise<CatalogDrift | undefined> {
    const semanticIds = this.state.servable.lineage.semanticIds;
    if (!semanticIds) return undefined;
    if (this.driftOf?.semanticIds !== semanticIds) this.driftOf = { semanticIds, drift: await catalogDrift(this.store, semanticIds) };
    return this.driftOf.drift;
  }

  /** Why a full rebuild is due now (undefined: it is not, or one is in progress). */
  private async rebuildTrigger(): Promise<{ trigger: 'schedule' | 'drift'; reason: string } | undefined> {
    const r = this.settings.rebuild;
    const now = Date.now();
    if (!r.enabled || this.rebuild || now < this.rebuildNotBefore) return undefined;
    const drift = await this.drift();
    if (r.everySeconds > 0) {
      const since = drift ? drift.rebuild.builtAtMs : Math.max(this.startedAt, this.rebuildNotBefore);
      if (now - since >= r.everySeconds * 1000) {
        return { trigger: 'schedule', reason: `${drift ? `codebooks ${drift.rebuild.id} fitted` : 'lineage started'} ${Math.round((now - since) / 1000)} s ago (every ${r.everySeconds} s)` };
      }
    }
    const over = drift ? driftReasons(drift, r) : [];
    return over.length > 0 ? { trigger: 'drift', reason: over.join('; ') } : undefined;
  }

  /** Starts a full rebuild in the background when one is due. */
  private async considerRebuild(): Promise<RebuildProgress | undefined> {
    const due = await this.rebuildTrigger();
    if (!due) return undefined;
    const id = `rebuild-${randomBytes(4).toString('hex')}`;
    const abort = new AbortController();
    const training = this.trainCandidate(abort.signal).catch((error: unknown) => {
      log.error({ rebuildId: id, err: error }, 'the full rebuild failed');
      return { failed: (error as Error).message ?? String(error) };
    });
    const rebuild: Rebuild = { id, ...due, startedAt: Date.now(), abort, training, settled: false, caughtUp: 0, gate: { windows: 0, liveExamples: 0, liveSum: 0, candidateExamples: 0, candidateSum: 0 } };
    void training.then(() => {
      rebuild.settled = true;
    });
    this.rebuild = rebuild;
    log.info({ rebuildId: id, trigger: due.trigger, reason: due.reason }, 'full rebuild started in the background');
    return { phase: 'started', rebuildId: id, ...due };
  }

  /**
   * The candidate: semantic IDs rebuilt from the archived catalog (a model without them is only
   * retrained) and a model trained with the bootstrap's settings on the archived interactions
   * below the live model's position when the rebuild started (its checkpoint records that
   * position). Items archived after the rebuild are coded with its codebooks before training
   * again (as the bootstrap does).
   */
  private async trainCandidate(signal: AbortSignal): Promise<TrainedCandidate> {
    const started = performance.now();
    // The interactions the live model has seen when the rebuild starts: what arrives meanwhile
    // is caught up with micro-epochs once the candidate is trained.
    const below = { ...this.state.offsets };
    // Dropping the rebuild (from within a look, too) must not wait for a look to end.
    const aborted = new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    const { config } = this.options;
    const modelType = this.state.servable.modelType;
    let semanticIds: string | undefined;
    if (this.state.servable.lineage.semanticIds) {
      const rebuilt = await this.holdCatalog(() => runRebuildJob(config, { source: { kind: 'archive' } }));
      if (rebuilt.kind !== 'full') throw new Error('the full rebuild coded new items instead of rebuilding');
      semanticIds = rebuilt.result.builds.at(-1)?.semanticIds.id;
    }
    if (signal.aborted) throw new Error('the trainer stopped');
    const train = await trainCodingNewItems(
      {
        config,
        trainer: firstModelTrainer(config, modelType, this.settings.rebuild.epochs),
        source: { kind: 'archive', below },
        writeRows: this.options.writeRows ?? true,
        signal,
        // During a look the candidate gets one step per REBUILD_SLICE_MS (time-sliced: the
        // look keeps most of the thread, and a rebuild still ends under a steady stream).
        pause: async () => {
          if (this.stepping && !signal.aborted) await Promise.race([this.stepping, aborted, new Promise((resolve) => setTimeout(resolve, REBUILD_SLICE_MS))]);
        },
        ...(semanticIds ? { semanticIds } : {}),
      },
      semanticIds ? () => this.codeNewItemsOnto(semanticIds) : undefined,
    );
    if (!train.checkpointId) throw new Error('the candidate\'s training run wrote no checkpoint');
    return { checkpointId: train.checkpointId, ...(semanticIds ? { semanticIds } : {}), trainSeconds: (performance.now() - started) / 1000 };
  }

  /**
   * The rebuild's part of a look, after the live model's micro-epoch on `rows` (read from
   * `before`), once the candidate is trained: it is loaded and caught up to `before`, then runs its own
   * micro-epoch on the window; a window neither model had trained on counts for the gate; with
   * enough examples the candidate is published or dropped.
   */
  private async shadow(rows: readonly ArchivedInteraction[], before: Record<string, number>, live: MicroEpochResult, index: number): Promise<RebuildProgress | undefined> {
    const rebuild = this.rebuild;
    if (!rebuild) return undefined;
    if (!rebuild.state) {
      const trained = await rebuild.training;
      if ('failed' in trained) return this.decide(rebuild, 'failed', trained.failed);
      rebuild.trained = trained;
      try {
        rebuild.state = await LiveTrainer.continueCheckpoint(this.options, this.settings, this.store, this.ch, trained.checkpointId);
      } catch (error) {
        return this.decide(rebuild, 'failed', `loading the candidate ${trained.checkpointId}: ${(error as Error).message}`);
      }
      rebuild.loadedAt = Date.now();
      log.info({ rebuildId: rebuild.id, checkpointId: trained.checkpointId, trainSeconds: Math.round(trained.trainSeconds), offsets: rebuild.state.offsets }, 'full rebuild trained: catching up with the live model');
    }
    const candidate = rebuild.state;
    // Catch up: what the live model had seen before this window and the candidate has not.
    const behind = (): boolean => Object.entries(before).some(([key, next]) => (candidate.offsets[key] ?? 0) < next);
    while (behind()) {
      const chunk = (await this.readFrom(candidate.offsets, this.settings.maxEvents)).filter((r) => Number(r.offset) < (before[r.key] ?? 0));
      if (chunk.length === 0) break;
      const { result } = await LiveTrainer.microEpoch(candidate, chunk);
      LiveTrainer.absorb(candidate, result);
      rebuild.caughtUp += chunk.length;
      this.options.onProgress?.(`full rebuild ${rebuild.id} catching up: ${rebuild.caughtUp} interactions`);
    }
    // This window: the events the candidate has not trained on (all of them, as it was trained
    // below the live position and caught up to it; a window it had partly seen would not count).
    const unseen = rows.filter((r) => Number(r.offset) >= (candidate.offsets[r.key] ?? 0));
    if (unseen.length === 0) return { phase: 'shadow', rebuildId: rebuild.id, caughtUp: rebuild.caughtUp, gateExamples: rebuild.gate.candidateExamples, live: Number.NaN, candidate: Number.NaN };
    const { result } = await LiveTrainer.microEpoch(candidate, unseen);
    this.writeRow('rebuild', index, result, candidate);
    const metric = this.settings.micro.gateMetric;
    const g = rebuild.gate;
    if (unseen.length === rows.length && live.prequential && result.prequential) {
      g.windows++;
      g.liveExamples += live.prequential.users;
      g.liveSum += (live.prequential.metrics[metric] ?? 0) * live.prequential.users;
      g.candidateExamples += result.prequential.users;
      g.candidateSum += (result.prequential.metrics[metric] ?? 0) * result.prequential.users;
    }
    const liveValue = g.liveExamples > 0 ? g.liveSum / g.liveExamples : Number.NaN;
    const candidateValue = g.candidateExamples > 0 ? g.candidateSum / g.candidateExamples : Number.NaN;
    if (Math.min(g.liveExamples, g.candidateExamples) < this.settings.rebuild.gateExamples) {
      const waited = (Date.now() - (rebuild.loadedAt ?? Date.now())) / 1000;
      if (waited > this.settings.rebuild.gateTimeoutSeconds) {
        return this.decide(rebuild, 'refused', `no decision within ${this.settings.rebuild.gateTimeoutSeconds} s of training: scored on ${g.candidateExamples} of ${this.settings.rebuild.gateExamples} examples (${metric} ${candidateValue.toFixed(4)} vs live ${liveValue.toFixed(4)})`);
      }
      LiveTrainer.absorb(candidate, result);
      return { phase: 'shadow', rebuildId: rebuild.id, caughtUp: rebuild.caughtUp, gateExamples: g.candidateExamples, live: liveValue, candidate: candidateValue };
    }
    const margin = this.settings.rebuild.gateMargin;
    const numbers = `${metric} ${candidateValue.toFixed(4)} vs live ${liveValue.toFixed(4)} on ${g.candidateExamples} examples in ${g.windows} windows (margin ${margin})`;
    if (candidateValue < liveValue - margin) return this.decide(rebuild, 'refused', `the candidate is worse: ${numbers}`);
    const checkpointId = await this.checkpoint(candidate, result);
    const outcome = await this.publishVersion(
      checkpointId,
      { split: 'stream', metrics: { [metric]: candidateValue }, users: g.candidateExamples },
      `full rebuild ${rebuild.id} (${rebuild.trigger}: ${rebuild.reason}): ${numbers}`,
    );
    if (!outcome.published) return this.decide(rebuild, 'refused', `not published: ${outcome.notPublished ?? 'the registry refused it'}`);
    // The candidate is the live lineage from here on.
    const old = this.state;
    this.state = candidate;
    rebuild.state = undefined;
    this.catalogSeen = -1;
    LiveTrainer.disposeState(old);
    return this.decide(rebuild, 'published', numbers, outcome.published.version);
  }

  /** Where the rebuild in progress is, at a look that did not score it (still training). */
  private rebuildProgress(): RebuildProgress | undefined {
    const rebuild = this.rebuild;
    if (!rebuild) return undefined;
    return { phase: 'training', rebuildId: rebuild.id, seconds: (Date.now() - rebuild.startedAt) / 1000 };
  }

  /** Records the rebuild's outcome (a live_rebuilds row), drops what is left of it, and sets when the next may start. */
  private async decide(rebuild: Rebuild, decision: 'published' | 'refused' | 'failed', detail: string, version?: number): Promise<RebuildProgress> {
    const g = rebuild.gate;
    const r = this.settings.rebuild;
    this.sink.writer?.write('live_rebuilds', [
      {
        run_id: this.runId,
        rebuild_id: rebuild.id,
        trigger: rebuild.trigger,
        reason: rebuild.reason,
        model: this.state.servable.modelType,
        semantic_ids_id: rebuild.trained?.semanticIds ?? '',
        checkpoint_id: rebuild.trained?.checkpointId ?? '',
        train_s: rebuild.trained?.trainSeconds ?? 0,
        catch_up_events: rebuild.caughtUp,
        gate_metric: this.settings.micro.gateMetric,
        gate_windows: g.windows,
        gate_examples: g.candidateExamples,
        live_value: g.liveExamples > 0 ? g.liveSum / g.liveExamples : null,
        candidate_value: g.candidateExamples > 0 ? g.candidateSum / g.candidateExamples : null,
        margin: r.gateMargin,
        decision,
        version: version ?? null,
        detail,
        started_at: rebuild.startedAt,
        decided_at: Date.now(),
      },
    ]);
    (decision === 'failed' ? log.warn.bind(log) : log.info.bind(log))({ rebuildId: rebuild.id, decision, version, detail }, `full rebuild ${decision}`);
    if (rebuild.state) LiveTrainer.disposeState(rebuild.state);
    this.rebuild = undefined;
    // Published: the schedule counts from the new codebooks (or from now, without any).
    this.rebuildNotBefore = decision === 'published' ? Date.now() : Date.now() + r.retrySeconds * 1000;
    return { phase: 'decided', rebuildId: rebuild.id, decision, detail, ...(version !== undefined ? { version } : {}) };
  }

  /** Stops a rebuild in progress without a decision (the trainer is closing or continues another version). */
  private async dropRebuild(why: string): Promise<void> {
    const rebuild = this.rebuild;
    if (!rebuild) return;
    this.rebuild = undefined;
    rebuild.abort.abort();
    await rebuild.training;
    if (rebuild.state) LiveTrainer.disposeState(rebuild.state);
    rebuild.state = undefined;
    log.info({ rebuildId: rebuild.id, why }, 'full rebuild dropped');
  }

  /**
   * Looks every intervalSeconds, or as soon as wakeEvents interactions are archived past the
   * stream position, until `signal` aborts (a look in progress finishes first). While it waits it
   * calls `onWait` every pollSeconds (a heartbeat: it stops when a look hangs).
   *
   * The count is cheap and approximate (no FINAL: copies of an event not merged yet count twice),
   * so a wake can find fewer new interactions than it counted; after such a wake the trainer
   * waits for the interval before it wakes early again. A count that fails is logged and the
   * interval alone decides.
   *
   * A look that fails (ClickHouse or the registry away, a write failing) may have trained or
   * absorbed part of its window in memory: the trainer waits (pollSeconds, doubling up to 60 s),
   * then continues the registry's live version from its checkpoint, as a restart would, so that
   * nothing is trained twice or skipped. After maxFailures failures in a row it throws the last.
   */
  async run(signal: AbortSignal, onStep?: (step: LiveStep) => void, onWait?: () => void, onFailure?: (error: unknown) => void): Promise<void> {
    const { intervalSeconds, pollSeconds, maxEvents, minEvents, maxFailures } = this.settings;
    // Fewer than minEvents would not be looked at: waking for them would only spin.
    const wakeEvents = this.settings.wakeEvents === 0 ? 0 : Math.max(this.settings.wakeEvents, minEvents);
    let early = false; // whether the coming look is an early one (woken by the count)
    let failures = 0;
    while (!signal.aborted) {
      const started = Date.now();
      let step: LiveStep;
      try {
        step = await this.step();
        failures = 0;
      } catch (error) {
        // Whatever comes next (this loop, or a step() after it), it starts from the live checkpoint.
        this.stale = true;
        onFailure?.(error);
        if (++failures > maxFailures) throw error;
        const waitMs = Math.min(pollSeconds * 1000 * 2 ** (failures - 1), 60_000);
        log.error({ err: error, runId: this.runId, failures, maxFailures, waitMs }, 'look failed: continuing the live version from its checkpoint after a wait');
        await sleep(waitMs, signal);
        onWait?.();
        continue;
      }
      onStep?.(step);
      // An early look that read fewer than it was woken for (the count was inflated) allows no
      // early look before the next one at the interval, which allows them again.
      let earlyWakes = wakeEvents > 0 && (!early || step.read >= wakeEvents);
      early = false;
      // A backlog (a full batch read) is worked off at once; otherwise wait for the next look.
      if (step.read >= maxEvents) continue;
      const due = started + intervalSeconds * 1000;
      while (!signal.aborted && Date.now() < due && !early) {
        await sleep(Math.min(due - Date.now(), pollSeconds * 1000), signal);
        onWait?.();
        if (signal.aborted || Date.now() >= due || !earlyWakes) continue;
        try {
          const waiting = await this.archivedPast(this.state.offsets, wakeEvents);
          early = waiting >= wakeEvents;
          if (early) log.debug({ runId: this.runId, waiting, wakeEvents }, 'enough new interactions: looking before the interval is up');
        } catch (error) {
          log.warn({ err: error, runId: this.runId }, 'counting the new interactions failed: the next look is at the interval');
          earlyWakes = false;
        }
      }
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.dropRebuild('the trainer is closing');
    LiveTrainer.disposeState(this.state);
    await this.sink.close();
    await this.ch.close();
  }
}
