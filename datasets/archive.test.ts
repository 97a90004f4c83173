import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openClickHouse } from '../infra/clickhouse';
import { StreamrecConfig } from '../schemas/config';
import { encodeReplayEvent, replayBatches } from '../ingest/replay';
import { startIngest } from '../ingest/run';
import { datasetEvents, interactionCount, loadArchiveDataset, loadDataset } from './index';
import { itWithDatasets } from './testing/realDatasets';

describe('the ClickHouse archive as a dataset', () => {
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
