import { refusalReason, refusesRowContent, writeIsolating, type IngestArchive, type InteractionRow, type ItemRow } from '../infra/clickhouse';
import type { HistoryStore } from '../infra/history';
import { Instrumentation } from '../instrumentation';
import { createLogger } from '../logging';
import type { IngestConfig } from '../schemas/config';
import { interactionEventSchema, itemEventSchema, type DeadLetter, type InteractionEvent, type ItemEvent } from '../schemas/events';
import { fastInteraction } from '../schemas/fastInteraction';
import { BatchPipeline } from './batchPipeline';
import { decodeEvents, dedupeEvents, rollingHistory, sessionize, skipApplied } from './operators';
import { deadLetter, type IngestBatch, type RawBatch, type Sourced } from './types';

const log = createLogger('ingest.processor');

/** The next offset to consume, per topic-partition (what Kafka commits). */
export interface CommitOffset {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
}

/** Somewhere dead letters go: the dead-letter topic, the ClickHouse table, a list in tests. */
export interface DeadLetterSink {
  publish(letters: readonly DeadLetter[]): Promise<void>;
}

export interface IngestProcessorOptions {
  readonly config: Pick<IngestConfig, 'topics' | 'history' | 'dedupe' | 'flush' | 'limits'> & Partial<Pick<IngestConfig, 'keyCheck'>>;
  /** Restored before the processor is created: its users' event ids seed the dedupe window. */
  readonly store: HistoryStore;
  /** Where validated events are archived (the ClickHouse tables through `IngestArchive`). */
  readonly archive?: Pick<IngestArchive, 'insertInteractions' | 'insertItems' | 'markArchived'> | undefined;
  readonly deadLetters: readonly DeadLetterSink[];
  /** Commits offsets once their effects are durable. */
  readonly commit: (offsets: CommitOffset[]) => Promise<void>;
  readonly instrumentation?: Instrumentation;
  readonly now?: () => number;
}

export interface IngestTotals {
  messages: number;
  accepted: number;
  items: number;
  deadLetters: number;
  skipped: number;
  /** Accepted messages whose key is absent or not their id (ingest.keyCheck `count`). */
  keyMismatches: number;
  /** Messages the broker deleted before they were read (retention, a size limit): reported, never read. */
  lostToRetention: number;
  flushes: number;
  deadLetterCodes: Record<string, number>;
}

interface Pending {
  /** Archive rows not yet sent, and the events they were made from (to dead-letter a refused row). */
  interactions: InteractionRow[];
  interactionSources: Array<Sourced<InteractionEvent>>;
  /** Archive inserts already started for this pending set (sent in chunks while processing): the rows they had refused. */
  archiveWrites: Array<Promise<DeadLetter[]>>;
  archivedRows: number;
  items: ItemRow[];
  itemSources: Array<Sourced<ItemEvent>>;
  deadLetters: DeadLetter[];
  offsets: Map<string, CommitOffset>;
  messages: number;
  since: number | undefined;
}

const emptyPending = (): Pending => ({
  interactions: [],
  interactionSources: [],
  archiveWrites: [],
  archivedRows: 0,
  items: [],
  itemSources: [],
  deadLetters: [],
  offsets: new Map(),
  messages: 0,
  since: undefined,
});

function interactionRow(e: Sourced<InteractionEvent>, ingestedAt: number): InteractionRow {
  const { event, origin } = e;
  return {
    event_id: event.eventId,
    user_id: event.userId,
    item_id: event.itemId,
    type: event.type,
    value: event.value ?? null,
    ts: event.ts,
    session_index: e.sessionIndex ?? 0,
    source: event.source ?? '',
    context: event.context ? JSON.stringify(event.context) : '',
    topic: origin.topic,
    partition: origin.partition,
    offset: e.offset,
    ingested_at: ingestedAt,
  };
}

function itemRow(e: Sourced<ItemEvent>, ingestedAt: number): ItemRow {
  const { event, origin } = e;
  return {
    item_id: event.itemId,
    ts: event.ts,
    title: event.title ?? '',
    brand: event.brand ?? '',
    categories: event.categories ?? [],
    description: event.description ?? '',
    features: event.features ?? [],
    meta: event.meta ?? '',
    topic: origin.topic,
    partition: origin.partition,
    offset: e.offset,
    ingested_at: ingestedAt,
  };
}

/**
 * The ingest stage for one process: runs each source batch through the operators (decode and
 * validate, skip redeliveries, de-duplicate, rolling history, sessions), buffers the effects, and
 * flushes them in a fixed order: archive rows and dead letters, then the history changelog, then
 * the offset commit. A crash anywhere before the commit replays the batches, and the replay is
 * recognised (per-user applied offsets), so nothing is lost or applied twice.
 */
export class IngestProcessor {
  readonly totals: IngestTotals = { messages: 0, accepted: 0, items: 0, deadLetters: 0, skipped: 0, keyMismatches: 0, lostToRetention: 0, flushes: 0, deadLetterCodes: {} };
  private readonly interactions: BatchPipeline<RawBatch, IngestBatch<InteractionEvent>>;
  private readonly catalog: BatchPipeline<RawBatch, IngestBatch<ItemEvent>>;
  private readonly instrumentation: Instrumentation;
  private readonly now: () => number;
  private pending: Pending = emptyPending();
  private queue: Promise<unknown> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  /** The flush being written while processing goes on (at most one). */
  private inFlight: Promise<void> | undefined;
  private failure: unknown;
  /** Messages behind per topic-partition as of its last batch (Kafka sources), and their sum. */
  private readonly lags = new Map<string, number>();
  private lag = 0;

  constructor(private readonly options: IngestProcessorOptions) {
    const { config, store } = options;
    this.now = options.now ?? Date.now;
    this.instrumentation = options.instrumentation ?? new Instrumentation();
    const policy = config.keyCheck ?? 'dead_letter';
    const keyCheck = (field: string) => (policy === 'off' ? {} : { keyCheck: { field, policy } });
    const initialIds = function* (): Generator<{ eventId: string; ts: number }> {
      for (const h of store.values()) for (let i = 0; i < h.eventIds.length; i++) yield { eventId: h.eventIds[i]!, ts: h.timestamps[i]! };
    };
    this.interactions = new BatchPipeline((raw$) =>
      raw$.pipe(
        decodeEvents({ schema: interactionEventSchema(config.limits), limits: config.limits, now: this.now, fastPath: fastInteraction, ...keyCheck('userId') }),
        skipApplied({
          isApplied: (e) => store.appliedOffset(e.event.userId, e.origin.topic, e.origin.partition) >= e.offset,
          highestApplied: (topic, partition) => store.highestApplied(topic, partition),
        }),
        dedupeEvents({ maxIds: config.dedupe.maxIds, windowMs: config.dedupe.windowMs, initial: initialIds(), now: this.now }),
        rollingHistory({ state: store, maxLength: config.history.maxLength, toleranceMs: config.history.outOfOrderToleranceMs, now: this.now }),
        sessionize({ gapMs: config.history.sessionGapMs, state: store }),
      ),
    );
    this.catalog = new BatchPipeline((raw$) => raw$.pipe(decodeEvents({ schema: itemEventSchema(config.limits), limits: config.limits, now: this.now, ...keyCheck('itemId') })));
  }

  /** Starts the timer that flushes pending work at least every flush interval (see {@link flushInterval}). */
  startTimer(): void {
    this.timer ??= setInterval(() => {
      // Started, not awaited: batches go on being processed (and histories applied) while the
      // flush writes, as after a flush that process() starts.
      if (this.flushIsDue()) this.serialise(() => this.startFlush({ whenIdle: true })).catch((error: unknown) => log.error({ err: error }, 'timed flush failed'));
    }, Math.max(10, Math.floor(this.options.config.flush.intervalMs / 4)));
    this.timer.unref();
  }

  /**
   * Messages behind, summed over this process's partitions as of their last batches (revoked ones
   * forgotten); undefined until a source batch reported its lag (Kafka sources do).
   */
  consumerLag(): number | undefined {
    return this.lags.size === 0 ? undefined : this.lag;
  }

  /**
   * A partition's lag read by the source outside a batch (from the broker's high-water mark), so a
   * partition that delivers no batch still counts what is behind it.
   */
  reportLag(topic: string, partition: number, lag: number): void {
    this.setLag(`${topic}/${partition}`, lag);
  }

  /** Messages the source found deleted by the broker before they were read. */
  reportLost(messages: number): void {
    this.totals.lostToRetention += messages;
  }

  /**
   * The flush interval now: `flush.catchUpIntervalMs` (never less than `intervalMs`) while the
   * source reports at least `flush.catchUpLag` messages behind (summed over its partitions, as of
   * their last batches), else `flush.intervalMs`.
   */
  flushInterval(): number {
    const { intervalMs, catchUpIntervalMs, catchUpLag } = this.options.config.flush;
    return this.lag >= catchUpLag ? Math.max(intervalMs, catchUpIntervalMs) : intervalMs;
  }

  private flushIsDue(): boolean {
    const since = this.pending.since;
    return since !== undefined && this.now() - since >= this.flushInterval();
  }

  /**
   * Processes one source batch (serialised with flushes). When the flush policy says so, the
   * pending work starts flushing in the background while the next batches are processed. One
   * flush writes at a time, so flushes (and commits) stay in order: a flush due by time while
   * another is being written starts after it (the timer's check), and batches go on being applied
   * meanwhile; only `maxEvents` pending messages make processing wait for the flush in flight.
   */
  process(batch: RawBatch): Promise<void> {
    return this.serialise(async () => {
      this.throwIfFailed();
      await this.apply(batch);
      if (this.pending.messages >= this.options.config.flush.maxEvents) await this.startFlush();
      else if (this.flushIsDue()) await this.startFlush({ whenIdle: true });
    });
  }

  /** Makes all pending work durable and commits its offsets; resolves when done. */
  flush(): Promise<void> {
    return this.serialise(async () => {
      await this.startFlush();
      await this.inFlight;
      this.throwIfFailed();
    });
  }

  /**
   * Forgets everything not yet durable for partitions this process no longer owns (after a
   * rebalance): their new owner replays them from the last commit.
   */
  dropPartitions(topic: string, partitions: readonly number[]): Promise<void> {
    return this.serialise(async () => {
      const gone = new Set(partitions);
      const p = this.pending;
      const keep = (origin: { topic: string; partition: number }): boolean => origin.topic !== topic || !gone.has(origin.partition);
      const kept = <R extends { topic: string; partition: number }, S>(rows: R[], sources: S[]): [R[], S[]] => {
        const at = rows.flatMap((r, i) => (keep(r) ? [i] : []));
        return [at.map((i) => rows[i] as R), at.map((i) => sources[i] as S)];
      };
      [p.interactions, p.interactionSources] = kept(p.interactions, p.interactionSources);
      [p.items, p.itemSources] = kept(p.items, p.itemSources);
      p.deadLetters = p.deadLetters.filter((d) => keep(d.origin));
      for (const part of partitions) {
        p.offsets.delete(`${topic}/${part}`);
        this.setLag(`${topic}/${part}`, undefined);
      }
      if (topic === this.options.config.topics.interactions) this.options.store.dropPartitions(partitions);
    });
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.flush();
    this.interactions.close();
    this.catalog.close();
  }

  private serialise<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private setLag(key: string, lag: number | undefined): void {
    this.lag -= this.lags.get(key) ?? 0;
    if (lag === undefined) this.lags.delete(key);
    else {
      this.lags.set(key, lag);
      this.lag += lag;
    }
  }

  private async apply(raw: RawBatch): Promise<void> {
    const started = this.now();
    if (raw.lag !== undefined) this.setLag(`${raw.topic}/${raw.partition}`, raw.lag);
    const isCatalog = raw.topic === this.options.config.topics.catalog;
    const out: IngestBatch<InteractionEvent | ItemEvent> = isCatalog ? await this.catalog.process(raw) : await this.interactions.process(raw);
    const p = this.pending;
    const at = this.now();
    const { archive } = this.options;
    if (archive) {
      if (isCatalog) {
        for (const e of out.events as Array<Sourced<ItemEvent>>) {
          p.items.push(itemRow(e, at));
          p.itemSources.push(e);
        }
      } else {
        for (const e of out.events as Array<Sourced<InteractionEvent>>) {
          p.interactions.push(interactionRow(e, at));
          p.interactionSources.push(e);
        }
      }
      // Send archive rows in chunks as they accumulate, so the insert overlaps with processing;
      // the flush waits for every chunk before it writes the changelog.
      if (p.interactions.length >= this.options.config.flush.archiveChunkRows) {
        const chunk = p.interactions;
        const sources = p.interactionSources;
        p.interactions = [];
        p.interactionSources = [];
        p.archivedRows += chunk.length;
        const write = this.archiveIsolating((rows) => archive.insertInteractions(rows), chunk, sources);
        write.catch(() => undefined); // handled when the flush awaits it
        p.archiveWrites.push(write);
      }
    }
    const codes: Record<string, number> = {};
    for (const d of out.deadLetters) {
      p.deadLetters.push(d);
      codes[d.error.code] = (codes[d.error.code] ?? 0) + 1;
      this.totals.deadLetterCodes[d.error.code] = (this.totals.deadLetterCodes[d.error.code] ?? 0) + 1;
    }
    if (out.lastOffset !== undefined) {
      p.offsets.set(`${raw.topic}/${raw.partition}`, { topic: raw.topic, partition: raw.partition, offset: String(Number(out.lastOffset) + 1) });
    }
    p.messages += raw.messages.length;
    p.since ??= at;
    this.totals.messages += raw.messages.length;
    if (isCatalog) this.totals.items += out.events.length;
    else this.totals.accepted += out.events.length;
    this.totals.deadLetters += out.deadLetters.length;
    this.totals.skipped += out.skipped;
    this.totals.keyMismatches += out.keyMismatches ?? 0;
    this.instrumentation.emit('ingest.batch_end', {
      topic: raw.topic,
      partition: raw.partition,
      messages: raw.messages.length,
      accepted: out.events.length,
      deadLetters: out.deadLetters.length,
      deadLetterCodes: codes,
      skipped: out.skipped,
      keyMismatches: out.keyMismatches ?? 0,
      durationMs: this.now() - started,
    });
  }

  /**
   * Writes archive rows; rows the archive refuses for their content (ClickHouse cannot parse or
   * store a value) are isolated by halving the batch and come back as `sink_refused` dead letters
   * of their messages, while the rest is written. Their history entries, already applied, stay.
   */
  private async archiveIsolating<R>(write: (rows: readonly R[]) => Promise<void>, rows: readonly R[], sources: ReadonlyArray<Sourced<unknown>>): Promise<DeadLetter[]> {
    const refused = await writeIsolating(write, rows, refusesRowContent);
    return refused.map(({ index, error }) => {
      const s = sources[index] as Sourced<unknown>;
      const why = refusalReason(error);
      log.warn({ topic: s.origin.topic, partition: s.origin.partition, offset: s.origin.offset, err: why }, 'the archive refused a validated event; dead-lettered as sink_refused');
      return deadLetter(s.origin, s.raw, 'sink_refused', `the archive refused the validated event: ${why}`, null, this.now());
    });
  }

  private throwIfFailed(): void {
    if (this.failure !== undefined) throw this.failure;
  }

  private countRefused(refused: readonly DeadLetter[]): void {
    const catalog = this.options.config.topics.catalog;
    for (const d of refused) {
      if (d.origin.topic === catalog) this.totals.items--;
      else this.totals.accepted--;
      this.totals.deadLetters++;
      this.totals.deadLetterCodes[d.error.code] = (this.totals.deadLetterCodes[d.error.code] ?? 0) + 1;
      this.instrumentation.emit('ingest.sink_refused', { topic: d.origin.topic, partition: d.origin.partition, offset: d.origin.offset });
    }
  }

  /**
   * Takes the pending work and starts writing it (`whenIdle`: unless a flush is being written):
   * the history changes are serialised now (so later batches cannot leak into this flush), then
   * archive rows and dead letters, then the
   * history changelog, then the offset commit are each written only after the step before is
   * durable. A failure stops the processor: later calls reject with it.
   */
  private async startFlush(options: { readonly whenIdle?: boolean } = {}): Promise<void> {
    if (this.inFlight) {
      if (options.whenIdle) return; // the timer starts it once the one in flight is written
      await this.inFlight;
    }
    this.throwIfFailed();
    const p = this.pending;
    if (p.messages === 0 && p.offsets.size === 0) return;
    this.pending = emptyPending();
    const histories = this.options.store.prepareFlush();
    const started = this.now();
    const intervalMs = this.flushInterval();
    const { archive, deadLetters } = this.options;
    this.inFlight = (async () => {
      const [refusedLists] = await Promise.all([
        Promise.all([
          ...p.archiveWrites,
          archive && p.interactions.length > 0 ? this.archiveIsolating((rows) => archive.insertInteractions(rows), p.interactions, p.interactionSources) : [],
          archive && p.items.length > 0 ? this.archiveIsolating((rows) => archive.insertItems(rows), p.items, p.itemSources) : [],
        ]),
        ...(p.deadLetters.length > 0 ? deadLetters.map((sink) => sink.publish(p.deadLetters)) : []),
      ]);
      // Rows the archive refused are dead letters now (and no longer accepted events).
      const refused = refusedLists.flat();
      if (refused.length > 0) {
        await Promise.all(deadLetters.map((sink) => sink.publish(refused)));
        this.countRefused(refused);
      }
      const archived = this.now();
      const offsets = [...p.offsets.values()];
      // Everything below these offsets is archived or dead-lettered now: readers that go by offsets
      // (the live trainer) read below the marks, never past a gap a flush in progress leaves.
      await Promise.all([
        histories.write(),
        archive && offsets.length > 0 ? archive.markArchived(offsets.map((o) => ({ topic: o.topic, partition: o.partition, nextOffset: Number(o.offset) }))) : undefined,
      ]);
      const written = this.now();
      await this.options.commit(offsets);
      this.totals.flushes++;
      const durationMs = this.now() - started;
      // A flush longer than the interval holds up the next one, and with it the batches behind it.
      if (durationMs > Math.max(1000, intervalMs)) {
        log.warn({ durationMs, archiveMs: archived - started, historiesMs: written - archived, commitMs: this.now() - written, messages: p.messages }, 'slow flush: processing waits for it before the next flush');
      }
      this.instrumentation.emit('ingest.flush_end', {
        messages: p.messages,
        archived: p.archivedRows + p.interactions.length + p.items.length - refused.length,
        deadLetters: p.deadLetters.length + refused.length,
        histories: histories.count,
        committed: offsets.length,
        durationMs: this.now() - started,
        archiveMs: archived - started,
        historiesMs: written - archived,
        commitMs: this.now() - written,
        intervalMs,
      });
    })()
      .catch((error: unknown) => {
        this.failure = error;
        log.error({ err: error }, 'flush failed: offsets not committed; the processor stops');
      })
      .finally(() => {
        this.inFlight = undefined;
      });
  }
}
