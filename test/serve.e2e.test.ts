import { appendFileSync, cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { connect } from 'node:net';
import path from 'node:path';
import { ChangelogHistoryStore } from '../infra/history';
import { testHistory } from '../infra/history/testing/histories';
import { exited, runCli, spawnCli } from './cli';
import { waitFor } from './ingestHarness';
import { kafkaKind, testBrokers, testKafka, uniqueName } from './kafka';
import { writeTinyScientific } from './tinyScientific';

/**
 * `streamrec serve` as an operator runs it, on a Kafka-protocol broker: a model trained and
 * published with the CLI, histories from the changelog that ingest writes (records written before
 * and after the server starts), an item added to the catalog after training served without
 * retraining, a new publication picked up without a restart, a second replica beside the first
 * (each following the changelog and the registry itself), and a SIGTERM that lets a request in
 * flight finish before the process exits.
 */

/**
 * Sends a POST in two parts over a raw connection: the headers and the first half of the body,
 * then (after `between` resolves) the rest. Resolves with the raw response.
 */
function slowPost(url: string, route: string, body: string, between: () => Promise<void>): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    let response = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (response += chunk));
    socket.on('error', reject);
    socket.on('close', () => resolve(response));
    socket.on('connect', () => {
      const half = Math.floor(body.length / 2);
      socket.write(`POST ${route} HTTP/1.1\r\nHost: ${hostname}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body.slice(0, half)}`);
      void between().then(() => socket.write(body.slice(half)), reject);
    });
  });
}
/** A replica that swaps on announcements (`modelRegistry.announce`) and polls the registry only every 10 minutes; logs at info. */
const ANNOUNCED_REPLICA = { STREAMREC__MODEL_REGISTRY__ANNOUNCE: 'true', STREAMREC__SERVING__RELOAD_POLL_MS: '600000', STREAMREC_LOG_LEVEL: 'info' };

describe(`streamrec serve on ${kafkaKind()}`, () => {
  const root = mkdtempSync(path.join(tmpdir(), 'streamrec-serve-'));
  const data = writeTinyScientific(mkdtempSync(path.join(root, 'data-')));
  const changelog = uniqueName('serve-changelog');
  const models = uniqueName('serve-models');
  const config = path.join(root, 'config.json');
  writeFileSync(
    config,
    JSON.stringify({
      artifacts: { dir: path.join(root, 'artifacts'), registryFile: path.join(root, 'artifacts', 'item-registry.json') },
      kafka: { brokers: testBrokers() },
      ingest: { topics: { changelog, models } },
      features: { encoder: 'tfidf-lsa', pcaDims: 8, tfidfLsa: { minDf: 1 } },
      quantizer: { levels: 2, codesPerLevel: 8 },
      trainer: { model: { embeddingSize: 8, innerSize: 16, nLayers: 1, nHeads: 2, maxHistoryLength: 8 }, train: { epochs: 1, batchSize: 64, warmupSteps: 5 } },
      modelRegistry: { url: `dir:${path.join(root, 'registry')}` },
      serving: { port: 0, reloadPollMs: 200 },
    }),
  );
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  async function cli(args: string[], env: Record<string, string> = {}): Promise<string> {
    const { code, output } = await runCli(['--config', config, ...args], env, 180_000);
    if (code !== 0) throw new Error(`streamrec ${args.join(' ')} exited with ${code}:\n${output.slice(-3000)}`);
    return output;
  }

  it('serves the published model over live histories beside a replica, swaps to a new publication, drains a request in flight on SIGTERM', async () => {
    await cli(['rebuild', '--dataset', data]);
    const trained = await cli(['train', '--dataset', data, '--no-clickhouse']);
    const checkpoint = /checkpoint (checkpoint-[0-9a-f]{16})/.exec(trained)?.[1] as string;
    expect(await cli(['publish', '--checkpoint', checkpoint])).toContain('as version 1');

    const ingest = new ChangelogHistoryStore({ kafka: testKafka('serve-test'), topic: changelog });
    ingest.put(testHistory('u1', 1, ['ITEM0', 'ITEM6', 'ITEM12'], 10));
    await ingest.flush();

    const server = spawnCli(['--config', config, 'serve', '--histories', 'kafka']);
    const replicas: Array<ReturnType<typeof spawnCli>> = [];
    try {
      await waitFor(() => /serving on http:\/\/\S+/.test(server.output()), 60_000, 'the server to listen');
      const url = /serving on (http:\/\/\S+)/.exec(server.output())?.[1] as string;
      expect(server.output()).toContain('(model version 1; histories kafka)');
      const get = async (route: string): Promise<{ status: number; body: Record<string, unknown> }> => {
        const res = await fetch(`${url}${route}`);
        return { status: res.status, body: (await res.json()) as Record<string, unknown> };
      };
      /** Polls `route` until `accept` holds; returns that answer. */
      const until = async (route: string, accept: (r: { status: number; body: Record<string, unknown> }) => boolean, what: string) => {
        let last = await get(route);
        await waitFor(async () => accept((last = await get(route))), 30_000, what);
        return last;
      };
      await until('/readyz', (r) => r.status === 200, 'readiness');
      // A second replica beside it: the same registry and changelog, its own port; it follows the
      // model-published topic, its registry poll 10 minutes apart. It is given both by flags, over
      // a config whose registry is elsewhere: --registry must win, and --histories takes a URL.
      const replicaConfig = path.join(root, 'replica-config.json');
      writeFileSync(replicaConfig, JSON.stringify({ ...JSON.parse(readFileSync(config, 'utf8')), modelRegistry: { url: `dir:${path.join(root, 'no-registry-here')}` } }));
      const replica = spawnCli(
        ['--config', replicaConfig, 'serve', '--histories', `kafka://${testBrokers().join(',')}`, '--registry', path.join(root, 'registry')],
        ANNOUNCED_REPLICA,
      );
      replicas.push(replica);
      await waitFor(() => /serving on http:\/\/\S+/.test(replica.output()), 60_000, 'the replica to listen');
      const replicaUrl = /serving on (http:\/\/\S+)/.exec(replica.output())?.[1] as string;
      expect(replicaUrl).not.toBe(url);
      const fromReplica = async (route: string): Promise<Record<string, unknown>> => (await fetch(`${replicaUrl}${route}`)).json() as Promise<Record<string, unknown>>;
      const untilReplica = async (route: string, accept: (body: Record<string, unknown>) => boolean, what: string): Promise<Record<string, unknown>> => {
        let last = await fromReplica(route);
        await waitFor(async () => accept((last = await fromReplica(route))), 30_000, what);
        return last;
      };
      await untilReplica('/readyz', (b) => b.ready === true, 'the replica to be ready');

      const known = await get('/v1/users/u1/recommendations?k=5');
      expect(known.status).toBe(200);
      expect(known.body).toMatchObject({ userId: 'u1', historyLength: 3, model: { version: 1, checkpointId: checkpoint } });
      expect(known.body.fallback).toBeUndefined();
      expect((await get('/v1/users/u9/recommendations')).body.fallback).toBe('popular');
      // Search runs the rebuild's encoder (tfidf-lsa here) and PCA on the query.
      const search = await fetch(`${url}/v1/search`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: 'beaker supplies', k: 3 }) });
      expect(search.status).toBe(200);
      expect(((await search.json()) as { items: unknown[] }).items).toHaveLength(3);

      // A history ingest writes after the server started reaches it.
      ingest.put(testHistory('u9', 2, ['ITEM3', 'ITEM9'], 11));
      await ingest.flush();
      await ingest.close();
      const later = await until('/v1/users/u9/recommendations', (r) => r.body.fallback === undefined, 'the later history');
      expect(later.body).toMatchObject({ historyLength: 2 });
      // The replica follows the changelog itself and answers the same.
      const laterOnReplica = await untilReplica('/v1/users/u9/recommendations', (b) => b.fallback === undefined, 'the later history on the replica');
      expect(laterOnReplica.items).toEqual(later.body.items);
      expect((await fromReplica('/v1/users/u1/recommendations?k=5')).items).toEqual(known.body.items);

      // Items added to the catalog after training (coded with the same codebooks) are served without retraining.
      const grown = path.join(root, 'grown');
      cpSync(data, grown, { recursive: true });
      appendFileSync(path.join(grown, 'Tiny.text'), 'NEW0\tbeaker white kit model900. Industrial & Scientific beaker supplies. Brand1. \n');
      appendFileSync(path.join(grown, 'Tiny.item2index'), 'NEW0\t60\n');
      expect(await cli(['rebuild', '--dataset', grown, '--new-items'])).toContain('coded 1 new items');
      const similar = await until('/v1/items/NEW0/similar?k=3', (r) => r.status === 200, 'the new item');
      expect(similar.body.model).toMatchObject({ version: 1, items: 61 });
      const fresh = await fetch(`${url}/v1/recommendations`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ history: ['NEW0'], k: 3 }) });
      expect(fresh.status).toBe(200);
      // And it is recommended: ranked among the catalog's items for a history without it (all 61 asked for).
      const everything = await fetch(`${url}/v1/recommendations`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ history: ['ITEM5', 'ITEM11'], k: 61 }) });
      const ranked = ((await everything.json()) as { items: Array<{ itemId: string }> }).items.map((i) => i.itemId);
      expect(ranked).toHaveLength(59); // 61 less the two the history has
      expect(ranked).toContain('NEW0');

      // A new publication is served without a restart.
      // Prepared for serving before it goes live: the ONNX graph is already in the store when the servers swap.
      const republished = await cli(['publish', '--checkpoint', checkpoint, '--reason', 'again', '--prepare-serving'], { STREAMREC__MODEL_REGISTRY__ANNOUNCE: 'true' });
      expect(republished).toMatch(/prepared for serving: checkpoint \d+ ms, encoder \d+ ms, itemTable/);
      expect(republished).toContain('as version 2');
      const swapped = await until('/v1/users/u1/recommendations', (r) => (r.body.model as { version: number }).version === 2, 'version 2');
      expect(swapped.body.model).toMatchObject({ version: 2 });
      expect((await fetch(`${url}/metrics`).then((r) => r.text()))).toMatch(/streamrec_serving_swaps_total 3/);
      await untilReplica('/v1/users/u1/recommendations', (b) => (b.model as { version: number }).version === 2, 'version 2 on the replica');
      // The replica hears the announcement (its poll is minutes away; the registry directory's
      // change notification may have swapped it first).
      await waitFor(() => /"announced":2[^\n]*model publication announced/.test(replica.output()), 20_000, 'the announcement on the replica');

      // SIGTERM while a request is in flight: it is answered, then the process exits.
      const stopping = exited(server);
      const raw = await slowPost(url, '/v1/recommendations', JSON.stringify({ history: ['ITEM0', 'ITEM6'], k: 3 }), async () => {
        server.kill('SIGTERM');
        await waitFor(() => server.output().includes('stopping: no new connections'), 10_000, 'the server to start stopping');
        await new Promise((resolve) => setTimeout(resolve, 300)); // close() under way
      });
      expect(raw).toMatch(/^HTTP\/1\.1 200 /);
      expect(JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4)).items).toHaveLength(3);
      const { code } = await stopping;
      expect(code).toBe(0);
      expect(server.output()).toContain('serving stopped');
      // The replica keeps serving on its own.
      expect((await fromReplica('/v1/users/u1/recommendations?k=5')).model).toMatchObject({ version: 2 });
    } finally {
      server.kill('SIGTERM');
      for (const r of replicas) r.kill('SIGTERM');
    }
    for (const r of replicas) expect((await exited(r)).code).toBe(0);
  }, 300_000);
});
