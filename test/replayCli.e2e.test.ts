import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openClickHouse } from '../infra/clickhouse';
import { readTopicToEnd } from '../infra/history';
import { datasetEvents, loadDataset, type ReplayEvent } from '../datasets';
import { limitInteractions } from '../ingest';
import { ClickHouseConfig } from '../schemas/config';
import type { InteractionEvent } from '../schemas/events';
import { runCli } from './cli';
import { kafkaKind, testBrokers, testKafka, uniqueName } from './kafka';
import { writeTinyScientific } from './tinyScientific';

/** The JSON line a command printed on stdout last. */
function lastJson(output: string): Record<string, unknown> {
  const line = output
    .split('\n')
    .filter((l) => l.startsWith('{') && !l.includes('"level"'))
    .at(-1);
  if (!line) throw new Error(`no JSON result in:\n${output.slice(-2000)}`);
  return JSON.parse(line) as Record<string, unknown>;
}

describe(`streamrec replay and in-process ingest on ${kafkaKind()}`, () => {
  const dir = writeTinyScientific(mkdtempSync(path.join(tmpdir(), 'streamrec-replay-')), { items: 60, users: 120, length: 8, seed: 5 });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('produces a dataset to the topics named on the command line, with a progress bar, each user in order under its key', async () => {
    const dataset = await loadDataset(dir, { seed: 3 });
    const expected = [...datasetEvents(dataset)];
    const interactions = expected.filter((e): e is Extract<ReplayEvent, { kind: 'interaction' }> => e.kind === 'interaction');
    const topics = { interactions: uniqueName('replay-in'), catalog: uniqueName('replay-cat') };
    const { code, output } = await runCli(
      ['replay', '--dataset', dir, '--seed', '3', '--to', `kafka://${testBrokers().join(',')}/${topics.interactions}`, '--catalog-topic', topics.catalog],
      { STREAMREC_PROGRESS: '1' },
    );
    expect({ code, tail: code === 0 ? '' : output.slice(-2000) }).toEqual({ code: 0, tail: '' });
    expect(output).toMatch(new RegExp(`replay scientific \\[.*\\] 100% \\| ${expected.length}/${expected.length} events`));
    expect(lastJson(output)).toMatchObject({ dataset: 'scientific', produced: expected.length, topics });

    const kafka = testKafka();
    const byUser = new Map<string, InteractionEvent[]>();
    await readTopicToEnd(kafka, topics.interactions, (m) => {
      const event = JSON.parse(String(m.value)) as InteractionEvent;
      expect(m.key?.toString()).toBe(event.userId);
      byUser.set(event.userId, [...(byUser.get(event.userId) ?? []), event]);
    });
    const wanted = new Map<string, string[]>();
    for (const e of interactions) wanted.set(e.event.userId, [...(wanted.get(e.event.userId) ?? []), e.event.eventId]);
    // Every interaction once, each user's in its order (one partition per key keeps it).
    expect(new Map([...byUser].map(([u, list]) => [u, list.map((e) => e.eventId)]))).toEqual(wanted);
    for (const list of byUser.values()) expect(list.map((e) => e.ts)).toEqual([...list.map((e) => e.ts)].sort((a, b) => a - b));
    let items = 0;
    await readTopicToEnd(kafka, topics.catalog, () => void items++);
    expect(items).toBe(dataset.items.length);
  }, 120_000);

  it('paces a replay by event time at the chosen speed', async () => {
    const dataset = await loadDataset(dir, { seed: 3 });
    const chosen = [...limitInteractions(datasetEvents(dataset), 150)].flatMap((e) => (e.kind === 'interaction' ? [e.event.ts] : []));
    const span = Math.max(...chosen) - Math.min(...chosen);
    const factor = span / 2000; // the 150 interactions' event time in 2 s of wall time
    const topic = uniqueName('paced-in');
    const { code, output } = await runCli(['replay', '--dataset', dir, '--seed', '3', '--limit', '150', '--speed', `${factor}x`, '--to', `kafka://${testBrokers().join(',')}/${topic}`, '--catalog-topic', uniqueName('paced-cat')]);
    expect({ code, tail: code === 0 ? '' : output.slice(-2000) }).toEqual({ code: 0, tail: '' });
    const result = lastJson(output) as { produced: number; seconds: number };
    expect(result.produced).toBe(dataset.items.length + 150);
    // Sleeping can only make it later: at least the scaled span (less the 5 ms pauses it skips).
    expect(result.seconds).toBeGreaterThanOrEqual(1.9);
    expect(result.seconds).toBeLessThan(30);
    let count = 0;
    await readTopicToEnd(testKafka(), topic, () => void count++);
    expect(count).toBe(150);
  }, 120_000);

  it('ingests a dataset replayed in-process (--source memory:<dir>) into histories and embedded ClickHouse, without Kafka', async () => {
    const chDir = mkdtempSync(path.join(tmpdir(), 'streamrec-memory-'));
    try {
      // No broker: a Kafka address that refuses connections shows nothing tries to reach one.
      const { code, output } = await runCli(['ingest', '--source', `memory:${dir}`, '--seed', '3', '--limit', '500', '--clickhouse', `chdb:${chDir}`, '--progress-ms', '0'], { STREAMREC__KAFKA__BROKERS: '["127.0.0.1:1"]' });
      expect({ code, tail: code === 0 ? '' : output.slice(-2000) }).toEqual({ code: 0, tail: '' });
      const { totals, users } = lastJson(output) as { totals: { messages: number; accepted: number; items: number; deadLetters: number }; users: number };
      expect(totals).toMatchObject({ messages: 560, accepted: 500, items: 60, deadLetters: 0 });
      expect(users).toBeGreaterThan(50);
      const ch = await openClickHouse(ClickHouseConfig.parse({ url: `chdb:${chDir}` }));
      try {
        const [row] = await ch.query<{ n: string; users: string }>(`SELECT count() AS n, uniqExact(user_id) AS users FROM ${ch.table('interactions')}`);
        expect({ n: Number(row?.n), users: Number(row?.users) }).toEqual({ n: 500, users });
      } finally {
        await ch.close();
      }
    } finally {
      rmSync(chDir, { recursive: true, force: true });
    }
  }, 120_000);

  it('rejects flags that do not apply to the chosen source, saying which and why', async () => {
    const cases: Array<[string[], string]> = [
      [['--source', 'kafka://127.0.0.1:1/t', '--speed', '10x', '--seed', '4'], '--speed, --seed: only for a replayed dataset (--source memory:<dataset|dir>), not for Kafka'],
      [['--source', 'memory:'], '--source memory: needs a dataset name or directory, e.g. memory:ml-100k'],
      [['--source', `memory:${dir}`, '--group', 'g', '--idle-exit-ms', '10'], `--group, --idle-exit-ms: only for a Kafka source, not for --source memory:${dir}`],
      [['--source', `memory:${dir}`, '--history-store', 'changelog'], `--history-store changelog: not with --source memory:${dir}`],
    ];
    for (const [args, message] of cases) {
      const { code, output } = await runCli(['ingest', ...args]);
      expect({ args, code: code === 0 ? 0 : 'failed', output: output.includes(message) ? message : output.slice(-500) }).toEqual({ args, code: 'failed', output: message });
    }
  }, 90_000);
});
