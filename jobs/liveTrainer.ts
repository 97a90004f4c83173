import { randomBytes } from 'node:crypto';
import { ArtifactError, ConfigError, RegistryError } from '../errors';
import { BELOW_OFFSETS } from '../datasets/archive';
import { ArtifactStore } from '../infra/artifacts';
import { IngestArchive, openClickHouse, type ClickHouse } from '../infra/clickhouse';
import { codeNewItems } from '../quantizer/rebuild';
import type { ModelRegistry, PublishedModel } from '../infra/registry';
import { initTf } from '../infra/tf';
import type { Instrumentation } from '../instrumentation';
import { createLogger } from '../logging';
import { Random } from '../random';
import { IncrementalTrainer, examplesFrom, latestGrownCatalog, saveCheckpoint, type MicroEpochResult, type StreamInteraction } from '../trainer';
import { LiveTrainerConfig, type AppConfig } from './config';
import { microEpochRow, type MicroEpochRowInput } from './incremental';
import { publishCheckpoint } from './publish';
import { loadServableModel, type ServableModel } from './servable';
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
}

interface ArchivedInteraction {
  readonly event_id: string;
  readonly user_id: string;
  readonly item_id: string;
  readonly ts: string;
  readonly key: string;
  readonly offset: string;
}

/** At most this many of a user's latest examples seed the replay reservoir (bounds the read at start). */
const REPLAY_PER_USER = 200;

/** Each user's next-item examples: every item after the first, with the (at most `window`) items before it. */
function* examplesOfSequences(sequences: ReadonlyArray<readonly [string, readonly number[]]>, window: number): Generator<{ history: readonly number[]; target: number }> {
  for (const [, items] of sequences) for (let i = 1; i < items.length; i++) yield { history: items.slice(Math.max(0, i - window), i), target: items[i] as number };
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
 */
export class LiveTrainer {
  private offsets: Record<string, number>;
  /** The checkpoint the next one continues (its parent), and what the lineage has seen. */
  private lineage: { parent: string; latestEventMs: number; trainExamples: number };
  private stepCount = 0;
  /** Catalog rows in the archive at the last look (new items are coded when it changes). */
  private catalogSeen = -1;
  private closed = false;

  private constructor(
    private readonly options: LiveTrainerOptions,
    private readonly settings: LiveTrainerConfig,
    private readonly ch: ClickHouse,
    private readonly store: ArtifactStore,
    private readonly sink: TrainingSink,
    private servable: ServableModel,
    private trainer: IncrementalTrainer,
    private rng: Random,
    private live: PublishedModel,
    offsets: Record<string, number>,
    readonly runId: string,
  ) {
    this.offsets = offsets;
    this.lineage = LiveTrainer.lineageOf(servable);
  }

  private static lineageOf(servable: ServableModel): { parent: string; latestEventMs: number; trainExamples: number } {
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
      const state = await LiveTrainer.continueLive(options, settings, store, ch);
      log.info({ runId, version: state.live.version, checkpointId: state.live.checkpointId, offsets: state.offsets }, 'live trainer started');
      return new LiveTrainer(options, settings, ch, store, sink, state.servable, state.trainer, state.rng, state.live, state.offsets, runId);
    } catch (error) {
      await sink?.close();
      await ch.close();
      throw error;
    }
  }

  /** The live version's model, its optimizer, generator and stream position, and the histories up to that position. */
  private static async continueLive(
    options: LiveTrainerOptions,
    settings: LiveTrainerConfig,
    store: ArtifactStore,
    ch: ClickHouse,
  ): Promise<{ live: PublishedModel; servable: ServableModel; trainer: IncrementalTrainer; rng: Random; offsets: Record<string, number> }> {
    const live = await options.registry.live();
    if (!live) throw new ConfigError('the live trainer needs a live model: train one on the archive (`streamrec train --from-clickhouse`) and publish it (`streamrec publish`)');
    const servable = await loadServableModel(store, live.checkpointId, { catalog: 'latest', withTrainingState: true });
    try {
      const state = servable.trainingState;
      if (!state?.stream) {
        throw new ArtifactError(`checkpoint ${live.checkpointId} records no stream position: train the first model on the archive (\`streamrec train --from-clickhouse\`), then the live loop continues it`);
      }
      const rng = state.rng ? Random.restore(state.rng) : new Random(options.config.trainer.train.seed);
      const trainer = new IncrementalTrainer({
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
      // What the live model was trained on is replayed from the start (also after a restart): a
      // uniform sample of the examples below its stream position, rebuilt from the archive.
      trainer.seedReplay(examplesOfSequences(sequences, servable.maxHistoryLength));
      return { live, servable, trainer, rng, offsets: { ...state.stream.offsets } };
    } catch (error) {
      servable.dispose();
      throw error;
    }
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
    return this.trainer.replaySize;
  }

  /** The live version this trainer continues. */
  get liveVersion(): PublishedModel {
    return this.live;
  }

  /** Per archive partition, the first offset not read yet. */
  get streamOffsets(): Readonly<Record<string, number>> {
    return this.offsets;
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
    if (this.servable.modelType !== 'ccfrec') return 0;
    const [row] = await this.ch.query<{ n: string }>(`SELECT count() AS n FROM ${this.ch.table('items')} FINAL`);
    const archived = Number(row?.n ?? 0);
    if (archived === this.catalogSeen) return 0;
    this.catalogSeen = archived;
    // Grown from the model's own catalog: a full rebuild elsewhere in the store (a manual
    // `streamrec rebuild`) has other codebooks and another projection.
    const own = this.servable.lineage.semanticIds;
    const coded = await codeNewItems({
      events: await new IngestArchive(this.ch).readItems(),
      store: this.store,
      registryFile: this.options.config.artifacts.registryFile,
      features: this.options.config.features,
      job: 'streamrec trainer',
      ...(own ? { base: await latestGrownCatalog(this.store, own) } : {}),
    });
    if (!coded) return 0;
    await recordSemanticIdBuilds(this.options.config, [semanticIdBuildRow(coded.semanticIds, 'new_items')], this.sink.writer);
    const grown = await loadServableModel(this.store, this.lineage.parent, { catalog: 'latest', withTrainingState: true });
    if (grown.items.itemCount <= this.servable.items.itemCount) {
      grown.dispose();
      return 0;
    }
    this.trainer.replaceModel(grown.model, grown.trainingState?.optimizer);
    const joined = grown.items.itemCount - this.servable.items.itemCount;
    this.servable.dispose();
    this.servable = grown;
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

  /** One look at the archive: a micro-epoch over what arrived since the stream position (at most maxEvents), checkpointed and published when the gate passes. */
  async step(): Promise<LiveStep> {
    if (this.closed) throw new Error('live trainer: step after close');
    const newItems = await this.growCatalog();
    // The next offsets of each partition (a prefix per partition keeps the position exact), shared
    // fairly between the partitions known so far; the window is then put in time order.
    const perPartition = Math.max(1, Math.ceil(this.settings.maxEvents / Math.max(1, Object.keys(this.offsets).length)));
    const rows = await this.ch.query<ArchivedInteraction>(
      `SELECT event_id, user_id, item_id, toUnixTimestamp64Milli(ts) AS ts, concat(topic, '/', toString(partition)) AS key, offset
       FROM ${this.ch.table('interactions')} FINAL WHERE NOT (${BELOW_OFFSETS})
       ORDER BY topic, partition, offset LIMIT {perPartition:UInt32} BY topic, partition LIMIT {limit:UInt32}`,
      { offsets: this.offsets, perPartition, limit: this.settings.maxEvents },
    );
    if (rows.length < this.settings.minEvents) return { read: rows.length, unknownItems: 0, newItems };
    const next = { ...this.offsets };
    for (const r of rows) next[r.key] = Math.max(next[r.key] ?? 0, Number(r.offset) + 1);
    const ordered = [...rows].sort((a, b) => Number(a.ts) - Number(b.ts) || (a.event_id < b.event_id ? -1 : a.event_id > b.event_id ? 1 : 0));
    const events: StreamInteraction[] = [];
    let unknownItems = 0;
    for (const r of ordered) {
      const item = this.servable.items.denseId(r.item_id);
      if (item === undefined) unknownItems++;
      else events.push({ userId: r.user_id, item, timestampMs: Number(r.ts) });
    }
    const result = await this.trainer.microEpoch(events);
    this.offsets = next;
    const index = this.stepCount++;
    this.options.instrumentation?.emit('trainer.micro_epoch_end', { runId: this.runId, epoch: index, samples: result.trained, loss: result.loss, durationMs: result.seconds * 1000 });
    let step: LiveStep = { read: rows.length, unknownItems, newItems, result };
    if (result.accepted && result.steps > 0) {
      const seen = { latestEventMs: Math.max(this.lineage.latestEventMs, result.windowEndMs), trainExamples: this.lineage.trainExamples + result.trained };
      const checkpointId = await this.checkpoint(result, seen);
      this.lineage = { parent: checkpointId, ...seen };
      step = { ...step, checkpointId, ...(await this.publish(checkpointId, result)) };
    } else {
      step = { ...step, notPublished: result.steps === 0 ? 'nothing to train' : `refused by the gate: ${this.settings.micro.gateMetric} ${result.candidateGate.toFixed(4)} vs live ${result.liveGate.toFixed(4)} on ${result.holdout} held-out events` };
    }
    this.writeRow(index, result, step);
    log.info(
      { runId: this.runId, microEpoch: index, read: rows.length, examples: result.examples, steps: result.steps, accepted: result.accepted, version: step.published?.version, seconds: Math.round(result.seconds * 10) / 10 },
      step.published ? 'micro-epoch published' : 'micro-epoch not published',
    );
    return step;
  }

  /** Saves the model with its optimizer, generator and stream position, its parent the live checkpoint. */
  private async checkpoint(result: MicroEpochResult, seen: { readonly latestEventMs: number; readonly trainExamples: number }): Promise<string> {
    const { servable } = this;
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
      trainingState: { optimizer: this.trainer.optimizerState(), rng: this.rng.state(), stream: { offsets: { ...this.offsets }, pending: this.trainer.pendingRows() } },
      metrics: { prequential: result.prequential?.metrics ?? {}, holdout: { live: result.liveHoldout, candidate: result.candidateHoldout, users: result.holdout } },
      job: 'streamrec trainer',
      parent: this.lineage.parent,
    });
    return artifact.id;
  }

  private async publish(checkpointId: string, result: MicroEpochResult): Promise<Pick<LiveStep, 'published' | 'notPublished'>> {
    const metric = this.settings.micro.gateMetric;
    try {
      const outcome = await publishCheckpoint({
        registry: this.options.registry,
        store: this.store,
        checkpoint: checkpointId,
        evaluation: { split: 'stream', metrics: result.holdout > 0 ? result.candidateHoldout : (result.prequential?.metrics ?? {}), users: result.holdout },
        reason: `micro-epoch ${result.microEpoch} of ${this.runId}: ${metric} ${Number.isNaN(result.liveGate) ? 'n/a' : result.liveGate.toFixed(4)} -> ${Number.isNaN(result.candidateGate) ? 'n/a' : result.candidateGate.toFixed(4)} on ${result.holdout} held-out recent events`,
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

  /** Drops this model and continues the registry's live version from its stream position. */
  async reload(): Promise<void> {
    const state = await LiveTrainer.continueLive(this.options, this.settings, this.store, this.ch);
    this.trainer.dispose();
    this.servable.dispose();
    ({ live: this.live, servable: this.servable, trainer: this.trainer, rng: this.rng, offsets: this.offsets } = state);
    this.lineage = LiveTrainer.lineageOf(this.servable);
  }

  private writeRow(index: number, result: MicroEpochResult, step: LiveStep): void {
    const row: MicroEpochRowInput = {
      method: 'live',
      window: index,
      windowStartMs: result.windowStartMs,
      windowEndMs: result.windowEndMs,
      events: result.events,
      examples: result.examples,
      metrics: result.prequential?.metrics ?? {},
      trainSeconds: result.computeSeconds,
      steps: result.steps,
      trainSamples: result.samples,
      micro: result,
    };
    this.sink.writer?.write('micro_epochs', [
      microEpochRow(this.runId, { dataset: `clickhouse:${this.ch.database}`, model: this.servable.modelType }, row, this.settings.micro.gateMetric, { checkpointId: step.checkpointId, version: step.published?.version }),
    ]);
  }

  /** Looks every intervalSeconds until `signal` aborts (a look in progress finishes first). */
  async run(signal: AbortSignal, onStep?: (step: LiveStep) => void): Promise<void> {
    while (!signal.aborted) {
      const started = Date.now();
      const step = await this.step();
      onStep?.(step);
      // A backlog (a full batch read) is worked off at once; otherwise wait for the next look.
      if (step.read >= this.settings.maxEvents) continue;
      const wait = Math.max(0, this.settings.intervalSeconds * 1000 - (Date.now() - started));
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          signal.removeEventListener('abort', done);
          resolve();
        };
        const timer = setTimeout(done, wait);
        signal.addEventListener('abort', done, { once: true });
      });
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.trainer.dispose();
    this.servable.dispose();
    await this.sink.close();
    await this.ch.close();
  }
}
