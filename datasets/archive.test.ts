import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { IngestArchive, MIGRATIONS, openClickHouse, runMigrations, type InteractionRow } from '../infra/clickhouse';
import { StreamrecConfig } from '../schemas/config';
import { encodeReplayEvent, replayBatches } from '../ingest/replay';
import { startIngest } from '../ingest/run';
import { archiveOffsets } from './archive';
import { datasetEvents, interactionCount, loadArchiveDataset, loadDataset } from './index';
import { itWithDatasets } from './testing/realDatasets';

describe('the ClickHouse archive as a dataset', () => {
  it('takes its snapshot below the archive marks: rows a flush left visible past a gap are not in it', async () => {
    const ch = await openClickHouse(StreamrecConfig.parse({ clickhouse: { url: `chdb:${mkdtempSync(path.join(tmpdir(), 'streamrec-archive-marks-'))}` } }).clickhouse);
    try {
      const archive = new IngestArchive(ch);
      const row = (topic: string, partition: number, offset: number): InteractionRow => ({
        event_id: `${topic}/${partition}/${offset}`, user_id: `u${offset % 3}`, item_id: `i${offset}`, type: 'view', value: null, ts: 1_700_000_000_000 + offset * 1000,
        session_index: 0, source: '', context: '', topic, partition, offset, ingested_at: 1_700_000_000_000,
      });
      // interactions/0: offsets 0..9 visible, but ingest has marked only 0..5 archived without a
      // gap; interactions/1: rows, no mark yet; other/0: a topic no ingest marks (read as it is).
      await archive.insertInteractions([...Array.from({ length: 10 }, (_, o) => row('interactions', 0, o)), row('interactions', 1, 0), row('other', 0, 0), row('other', 0, 1)]);
      await archive.markArchived([{ topic: 'interactions', partition: 0, nextOffset: 3 }]);
      await archive.markArchived([{ topic: 'interactions', partition: 0, nextOffset: 6 }]);
      expect(await archiveOffsets(ch)).toEqual({ 'interactions/0': 6, 'other/0': 2 });
      const dataset = await loadArchiveDataset(ch);
      expect(interactionCount(dataset)).toBe(8);
      expect(dataset.streamOffsets).toEqual({ 'interactions/0': 6, 'other/0': 2 });
    } finally {
      await ch.close();
    }
  }, 60_000);

  it('marks every partition of an archive from before marks as archived so far when it is upgraded (migration 9)', async () => {
    const clickhouse = StreamrecConfig.parse({ clickhouse: { url: `chdb:${mkdtempSync(path.join(tmpdir(), 'streamrec-archive-upgrade-'))}` } }).clickhouse;
    const old = await openClickHouse(clickhouse, { migrations: MIGRATIONS.filter((m) => m.version < 9) });
    try {
      const row = (partition: number, offset: number): InteractionRow => ({
        event_id: `${partition}/${offset}`, user_id: `u${offset % 3}`, item_id: `i${offset}`, type: 'view', value: null, ts: 1_700_000_000_000 + offset * 1000,
        session_index: 0, source: '', context: '', topic: 'interactions', partition, offset, ingested_at: 1_700_000_000_000,
      });
      await new IngestArchive(old).insertInteractions([row(0, 0), row(0, 1), row(1, 0), row(2, 0), row(2, 1), row(2, 2)]);
      await runMigrations(old, MIGRATIONS);
      // A first flush after the upgrade touches partition 0 only: partitions 1 and 2 stay readable.
      await new IngestArchive(old).insertInteractions([row(0, 2)]);
      await new IngestArchive(old).markArchived([{ topic: 'interactions', partition: 0, nextOffset: 3 }]);
      expect(await archiveOffsets(old)).toEqual({ 'interactions/0': 3, 'interactions/1': 1, 'interactions/2': 3 });
    } finally {
      await old.close();
    }
  }, 60_000);

  itWithDatasets('ml-100k')('gives back the ingested catalog and every user sequence in time order', async () => {
    const source = await loadDataset('ml-100k');
    const config = StreamrecConfig.parse({
      clickhouse: { url: `chdb:${mkdtempSync(path.join(tmpdir(), 'streamrec-archive-ds-'))}` },
      ingest: { historyStore: 'memory' },
    });
    const runtime = await startIngest({
      config,
      batches: replayBatches([...datasetEvents(source)].map(encodeReplayEvent), { topics: config.ingest.topics, partitions: 4 }),
    });
    await runtime.done;

    const ch = await openClickHouse(config.clickhouse);
    try {
      const archived = await loadArchiveDataset(ch);
      expect(archived.items).toHaveLength(source.items.length);
      expect(interactionCount(archived)).toBe(interactionCount(source));
      const byUser = new Map(archived.sequences.map((s) => [s.userId, s]));
      const problems = source.sequences.filter((s) => {
        const a = byUser.get(s.userId);
        // Equal timestamps may come back in another order (ties are ordered by event id).
        return !a || a.timestamps.join() !== s.timestamps.join() || [...a.itemIds].sort().join() !== [...s.itemIds].sort().join();
      });
      expect(problems.map((s) => s.userId)).toEqual([]);
      expect(archived.items.find((i) => i.itemId === '1')?.title).toBe('Toy Story');
    } finally {
      await ch.close();
    }
  }, 60_000);
});
