import { StoreError } from '../errors';
import type { InteractionRow, ItemRow } from '../infra/clickhouse';
import type { DeadLetter } from '../schemas/events';
import { MemoryHistoryStore } from '../infra/history';
import type { PreparedHistories } from '../infra/history/store';
import { StreamrecConfig } from '../schemas/config';
import { loadConfig } from '../schemas/loadConfig';
import { IngestProcessor, type CommitOffset } from './processor';
import type { RawBatch } from './types';

const TOPICS = { interactions: 'in', catalog: 'cat', changelog: 'log', deadLetterSuffix: '.dlq' };
const T0 = Date.UTC(2026, 0, 1);

type Flush = { maxEvents?: number; intervalMs?: number; catchUpIntervalMs?: number; catchUpLag?: number };

function ingestConfig(flush: Flush) {
  return loadConfig(StreamrecConfig, { env: {}, overrides: { ingest: { topics: TOPICS, flush } } }).ingest;
}

/** Messages `from`..`from + count - 1` of `partition`, three users; `lag` as a Kafka source reports it. */
function batch(from: number, count: number, lag?: number, partition = 0): RawBatch {
  return {
    topic: 'in',
    partition,
    ...(lag !== undefined ? { lag } : {}),
    messages: Array.from({ length: count }, (_, i) => {
      const n = from + i;
      const value = { eventId: `e${n}`, userId: `u${n % 3}`, itemId: `i${n}`, type: 'view', ts: T0 + n * 1000 };
      return { offset: String(n), key: Buffer.from(`u${n % 3}`), value: Buffer.from(JSON.stringify(value)) };
    }),
  };
}

/** A memory store that records when its flushed histories are written. */
class RecordingStore extends MemoryHistoryStore {
  constructor(private readonly steps: string[]) {
    super();
  }

  override prepareFlush(): PreparedHistories {
    const prepared = super.prepareFlush();
    return { count: prepared.count, write: async () => void this.steps.push(`histories ${prepared.count}`) };
  }
}

/** The archive's interface; inserts wait for `release` so a test can hold them. */
class HeldArchive {
  release: () => void = () => undefined;
  failWith: Error | undefined;
  private gate: Promise<void> = Promise.resolve();

  constructor(private readonly steps: string[]) {}

  hold(): void {
    this.gate = new Promise((resolve) => (this.release = resolve));
  }

  async insertInteractions(rows: readonly InteractionRow[]): Promise<void> {
    await this.gate;
    if (this.failWith) throw this.failWith;
    this.steps.push(`archive ${rows.length}`);
  }

  async insertItems(rows: readonly ItemRow[]): Promise<void> {
    this.steps.push(`items ${rows.length}`);
  }

  async markArchived(marks: ReadonlyArray<{ topic: string; partition: number; nextOffset: number }>): Promise<void> {
    this.steps.push(`marks ${marks.map((m) => `${m.topic}/${m.partition}@${m.nextOffset}`).join(',')}`);
  }
}

/** Resolves once `done()` holds (the background flush got there), or fails after a second. */
async function until(done: () => boolean): Promise<void> {
  for (let waited = 0; !done(); waited += 5) {
    if (waited > 1000) throw new Error('timed out waiting for the background flush');
    await new Promise((r) => setTimeout(r, 5));
  }
}

const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 20));

function setup(flush: Flush, clock = { now: T0 + 86_400_000 }) {
  const steps: string[] = [];
  const archive = new HeldArchive(steps);
  const commits: CommitOffset[][] = [];
  const processor = new IngestProcessor({
    config: ingestConfig(flush),
    store: new RecordingStore(steps),
    archive,
    deadLetters: [],
    commit: async (offsets) => {
      commits.push(offsets);
      steps.push(`commit ${offsets.map((o) => `${o.topic}/${o.partition}@${o.offset}`).join(',')}`);
    },
    now: () => clock.now,
  });
  return { steps, archive, commits, processor, clock };
}

describe('IngestProcessor flush policy', () => {
  it('flushes once maxEvents messages are pending, in order: archive, then histories, then the commit', async () => {
    const { steps, processor } = setup({ maxEvents: 5, intervalMs: 60_000 });
    await processor.process(batch(0, 3));
    await settle();
    expect(steps).toEqual([]);
    await processor.process(batch(3, 3)); // 6 pending >= 5: the flush starts in the background
    await until(() => steps.length === 4);
    expect(steps).toEqual(['archive 6', 'histories 3', 'marks in/0@6', 'commit in/0@6']);
    expect(processor.totals.flushes).toBe(1);
  });

  it('flushes by time: the first batch after intervalMs since the oldest pending one starts a flush', async () => {
    const { steps, processor, clock } = setup({ maxEvents: 500_000, intervalMs: 2000 });
    await processor.process(batch(0, 2));
    clock.now += 1999;
    await processor.process(batch(2, 2));
    await settle();
    expect(steps).toEqual([]);
    clock.now += 1;
    await processor.process(batch(4, 2));
    await until(() => steps.length === 4);
    expect(steps).toEqual(['archive 6', 'histories 3', 'marks in/0@6', 'commit in/0@6']);
  });

  it('applies batches while a timed flush is being written: the timer starts the flush and does not hold processing for it', async () => {
    const { steps, archive, processor, clock } = setup({ maxEvents: 500_000, intervalMs: 40 });
    const store = (processor as unknown as { options: { store: MemoryHistoryStore } }).options.store;
    await processor.process(batch(0, 3));
    archive.hold(); // the flush's archive insert waits until released
    clock.now += 40;
    processor.startTimer();
    await new Promise((r) => setTimeout(r, 30)); // the timer (every 10 ms) has started the flush
    const before = store.get('u0')?.itemIds.length ?? 0;
    // Processed while the flush is held (a processor that waited for the flush would not get here).
    const processed = await Promise.race([processor.process(batch(3, 3)).then(() => 'processed'), new Promise((r) => setTimeout(() => r('waiting for the flush'), 2000))]);
    expect(processed).toBe('processed');
    expect(store.get('u0')?.itemIds.length).toBe(before + 1);
    expect(steps).toEqual([]);
    archive.release();
    await processor.close();
    expect(steps).toEqual(['archive 3', 'histories 3', 'marks in/0@3', 'commit in/0@3', 'archive 3', 'histories 3', 'marks in/0@6', 'commit in/0@6']);
  });

  it('goes on applying batches when a flush falls due while another is being written; the timer starts it after, in order', async () => {
    const { steps, archive, processor, clock } = setup({ maxEvents: 500_000, intervalMs: 40 });
    await processor.process(batch(0, 3));
    archive.hold();
    clock.now += 40;
    await processor.process(batch(3, 3)); // due: the first flush starts (6 messages) and is held
    await processor.process(batch(6, 3));
    clock.now += 40;
    const processed = await Promise.race([processor.process(batch(9, 3)).then(() => 'processed'), new Promise((r) => setTimeout(() => r('waiting for the flush'), 2000))]);
    expect(processed).toBe('processed'); // due again, but the first is being written: not waited for
    expect(steps).toEqual([]);
    processor.startTimer();
    archive.release();
    await until(() => steps.length === 8); // the timer starts the second once the first is written
    expect(steps).toEqual(['archive 6', 'histories 3', 'marks in/0@6', 'commit in/0@6', 'archive 6', 'histories 3', 'marks in/0@12', 'commit in/0@12']);
    await processor.close();
  });

  it('flushes by the catch-up interval while the source is at least catchUpLag messages behind, and by intervalMs again once it has caught up', async () => {
    const { steps, processor, clock } = setup({ maxEvents: 500_000, intervalMs: 2000, catchUpIntervalMs: 10_000, catchUpLag: 1000 });
    await processor.process(batch(0, 2, 700, 0));
    await processor.process(batch(100, 2, 300, 1)); // 1000 behind over both partitions: catching up
    expect(processor.flushInterval()).toBe(10_000);
    clock.now += 9999;
    await processor.process(batch(2, 2, 700, 0));
    await settle();
    expect(steps).toEqual([]);
    clock.now += 1;
    await processor.process(batch(4, 2, 700, 0));
    await until(() => steps.length === 4);
    expect(steps).toEqual(['archive 8', 'histories 3', 'marks in/0@6,in/1@102', 'commit in/0@6,in/1@102']);

    await processor.process(batch(6, 2, 299, 0)); // 299 + 300 behind: caught up enough
    expect(processor.flushInterval()).toBe(2000);
    clock.now += 2000;
    await processor.process(batch(8, 2, 0, 0));
    await until(() => steps.length === 8);
    expect(steps.slice(4)).toEqual(['archive 4', 'histories 3', 'marks in/0@10', 'commit in/0@10']);
  });

  it('forgets the lag of revoked partitions, and never flushes less often than intervalMs', async () => {
    const { processor } = setup({ maxEvents: 500_000, intervalMs: 2000, catchUpIntervalMs: 1000, catchUpLag: 10 });
    await processor.process(batch(0, 1, 50, 0));
    await processor.process(batch(100, 1, 5, 1));
    expect(processor.flushInterval()).toBe(2000); // a catch-up interval below intervalMs is raised to it
    const other = setup({ maxEvents: 500_000, intervalMs: 2000, catchUpIntervalMs: 8000, catchUpLag: 10 }).processor;
    expect(other.consumerLag()).toBeUndefined(); // no batch has reported a lag yet
    await other.process(batch(0, 1, 50, 0));
    await other.process(batch(100, 1, 5, 1));
    expect(other.consumerLag()).toBe(55);
    expect(other.flushInterval()).toBe(8000);
    await other.process(batch(1, 1, 40, 0)); // a partition's later batch replaces its lag
    expect(other.consumerLag()).toBe(45);
    await other.dropPartitions('in', [0]);
    expect(other.consumerLag()).toBe(5); // partition 0's lag went with it
    expect(other.flushInterval()).toBe(2000);
  });

  it('writes no history and commits nothing until the archive insert is durable', async () => {
    const { steps, archive, processor } = setup({ maxEvents: 2, intervalMs: 60_000 });
    archive.hold();
    await processor.process(batch(0, 2)); // the flush starts in the background
    await settle();
    expect(steps).toEqual([]);
    archive.release();
    await until(() => steps.length === 4);
    expect(steps).toEqual(['archive 2', 'histories 2', 'marks in/0@2', 'commit in/0@2']);
  });

  it('stops on a failed archive insert: nothing is committed and later batches reject with the failure', async () => {
    const { steps, archive, commits, processor } = setup({ maxEvents: 2, intervalMs: 60_000 });
    archive.failWith = new Error('clickhouse down');
    await processor.process(batch(0, 2));
    await expect(processor.flush()).rejects.toThrow('clickhouse down');
    expect(commits).toEqual([]);
    expect(steps).toEqual([]);
    await expect(processor.process(batch(2, 2))).rejects.toThrow('clickhouse down');
  });
});

describe('IngestProcessor key check (ingest.keyCheck)', () => {
  const unkeyed = (b: RawBatch): RawBatch => ({ ...b, messages: b.messages.map((m, i) => ({ ...m, key: i === 0 ? null : Buffer.from('someone-else') })) });
  const run = async (keyCheck?: 'dead_letter' | 'count' | 'off') => {
    const processor = new IngestProcessor({
      config: { ...ingestConfig({ maxEvents: 1000, intervalMs: 60_000 }), ...(keyCheck ? { keyCheck } : {}) },
      store: new MemoryHistoryStore(),
      archive: new HeldArchive([]),
      deadLetters: [],
      commit: async () => undefined,
      now: () => T0 + 86_400_000,
    });
    try {
      await processor.process(unkeyed(batch(0, 3)));
      return processor.totals;
    } finally {
      await processor.close();
    }
  };

  it('dead-letters messages whose key is absent or not the userId by default, counts and accepts them with count, ignores keys with off', async () => {
    expect(await run()).toMatchObject({ messages: 3, accepted: 0, deadLetters: 3, keyMismatches: 0, deadLetterCodes: { key_mismatch: 3 } });
    expect(await run('count')).toMatchObject({ messages: 3, accepted: 3, deadLetters: 0, keyMismatches: 3 });
    expect(await run('off')).toMatchObject({ messages: 3, accepted: 3, deadLetters: 0, keyMismatches: 0 });
  });
});

describe('IngestProcessor when the archive refuses rows (sink_refused)', () => {
  /** Refuses any insert holding a row of `badUser`, as ClickHouse refuses a value it cannot parse. */
  class RefusingArchive {
    readonly written: InteractionRow[] = [];
    inserts = 0;
    constructor(private readonly badUser: string, private readonly error: (rows: number) => Error) {}
    async insertInteractions(rows: readonly InteractionRow[]): Promise<void> {
      this.inserts++;
      if (rows.some((r) => r.user_id === this.badUser)) throw this.error(rows.length);
      this.written.push(...rows);
    }
    async insertItems(): Promise<void> {}
    async markArchived(): Promise<void> {}
  }
  const contentError = (rows: number) =>
    new StoreError(`insert of ${rows} rows into interactions failed: Code: 25. DB::Exception: Cannot parse escape sequence\nRow 1: ...`, { context: { clickhouseCode: 25, rowContent: true } });

  const setupRefusing = (archive: RefusingArchive) => {
    const letters: DeadLetter[] = [];
    const commits: CommitOffset[][] = [];
    const processor = new IngestProcessor({
      config: { ...ingestConfig({ maxEvents: 1000, intervalMs: 60_000 }), keyCheck: 'off' },
      store: new MemoryHistoryStore(),
      archive,
      deadLetters: [{ publish: async (l) => void letters.push(...l) }],
      commit: async (offsets) => void commits.push(offsets),
      now: () => T0 + 86_400_000,
    });
    return { processor, letters, commits };
  };

  it('writes the other rows, dead-letters the refused ones with their original bytes, and commits past them', async () => {
    const archive = new RefusingArchive('u1', contentError);
    const { processor, letters, commits } = setupRefusing(archive);
    const b = batch(0, 9); // users u0, u1, u2 in turn: three rows of u1
    await processor.process(b);
    await processor.flush();
    expect(archive.written.map((r) => r.offset).sort((x, y) => x - y)).toEqual([0, 2, 3, 5, 6, 8]);
    expect(letters.map((d) => d.origin.offset).sort()).toEqual(['1', '4', '7']);
    expect(letters[0]).toMatchObject({ error: { code: 'sink_refused', path: null }, payload: b.messages[Number(letters[0]!.origin.offset)]!.value!.toString('base64') });
    expect(letters[0]!.error.message).toMatch(/^the archive refused the validated event: insert of \d+ rows into interactions failed: Code: 25/);
    expect(letters[0]!.error.message).not.toContain('Row 1');
    expect(commits).toEqual([[{ topic: 'in', partition: 0, offset: '9' }]]);
    expect(processor.totals).toMatchObject({ messages: 9, accepted: 6, deadLetters: 3, deadLetterCodes: { sink_refused: 3 } });
    await processor.close();
  });

  it('stops as before when the archive fails for another reason (not the rows\' content): nothing is dead-lettered or committed', async () => {
    const archive = new RefusingArchive('u1', () => new StoreError('insert failed: Code: 60. DB::Exception: Table x.interactions does not exist', { context: { clickhouseCode: 60, rowContent: false } }));
    const { processor, letters, commits } = setupRefusing(archive);
    await processor.process(batch(0, 3));
    await expect(processor.flush()).rejects.toThrow('does not exist');
    expect(archive.inserts).toBe(1);
    expect(letters).toEqual([]);
    expect(commits).toEqual([]);
  });
});
