import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FastifyInstance, InjectOptions } from 'fastify';
import { createTextEncoderSpec } from '../features';
import { ArtifactStore } from '../infra/artifacts';
import { MemoryModelRegistry, type ModelRegistry, type PublishEvaluation } from '../infra/registry';
import { tf } from '../infra/tf';
import { AppConfig, denseHistoriesBatch, runRebuildJob, runTrainJob, trainerConfigFromFlags } from '../jobs';
import { Random } from '../random';
import { AnnConfig, ServingConfig } from '../schemas/serving';
import { AnnIndexCache } from './ann';
import { apiSchemas } from './api';
import { logToFile, setLogLevel } from '../logging';
import { collectGarbage } from '../test/gc';
import { tinyStoresConfig, writeTinyScientific } from '../test/tinyScientific';
import { LocalHistories, MemoryHistories, type HistoryView } from './historyView';
import { ServingMetrics } from './metrics';
import { ModelHolder } from './modelHolder';
import { ItemTableCache } from './itemTableCache';
import { ModelVersion } from './modelVersion';
import { InferenceThread } from './onnx';
import { isPrepared } from './prepared';
import { buildServer } from './server';

/**
 * The serving API on a tiny model (a CCFRec trained briefly on a small dataset in the Scientific
 * layout, with a tuned text prior), through fastify's inject: answers, their parity with the
 * model's own scores, the fallback, bad input, the operations endpoints and hot swaps.
 */
describe('serving HTTP API', () => {
  const root = mkdtempSync(path.join(tmpdir(), 'streamrec-serving-'));
  const data = writeTinyScientific(mkdtempSync(path.join(root, 'data-')));
  const config = AppConfig.parse({
    ...tinyStoresConfig(root),
  });
  // validateResponses (the default): every response these tests get was checked against its zod schema by the server.
  const serving = ServingConfig.parse({ adminApiKey: 'sesame', maxK: 50, maxHistoryItems: 100, bodyLimitBytes: 4096 });
  const store = new ArtifactStore(config.artifacts.dir);
  const EVAL: PublishEvaluation = { split: 'test', metrics: { 'ndcg@10': 0.1 }, users: 10 };
  let registry: ModelRegistry;
  let holder: ModelHolder;
  let app: FastifyInstance;
  let checkpoint: string;
  const histories = new MemoryHistories();

  beforeAll(async () => {
    await runRebuildJob(config, { source: { kind: 'dataset', dataset: data } });
    const trainer = trainerConfigFromFlags(config.trainer, 'ccfrec', { 'text-prior': '1', 'text-prior-last': '2' });
    checkpoint = (await runTrainJob({ config, trainer, source: { kind: 'dataset', dataset: data }, writeRows: false })).checkpointId as string;
    // Any id the test names is "in the store": the lifecycle tests publish broken checkpoints on purpose.
    registry = new MemoryModelRegistry(async () => ({ modelType: 'ccfrec' }));
    await registry.publish({ checkpointId: checkpoint, evaluation: EVAL });
    holder = new ModelHolder((published) => ModelVersion.load(store, published));
    const first = await holder.syncWith(registry);
    expect(first.kind === "failed" ? first.error : first.kind).toBe("swapped");
    histories.put('u1', ['ITEM0', 'ITEM6', 'ITEM12'], [1000, 2000, 3000]);
    histories.put('u2', ['ITEM3', 'ITEM9'], [1500, 2500]);
    histories.put('u3', ['NOT-IN-CATALOG'], [2600]);
    app = buildServer({ config: serving, models: holder, histories, registry });
    await app.ready();
  }, 120_000);
  afterAll(async () => {
    await app.close();
    await holder.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('prepare stores what a load makes and marks the checkpoint prepared for its catalog last; a load then computes nothing', async () => {
    const semanticIds = (await store.latest('semantic_ids'))?.id as string;
    expect(await isPrepared(store, checkpoint, semanticIds)).toBe(false);
    const tableCache = new ItemTableCache(path.join(root, 'prepare-table-cache'));
    const timings = await ModelVersion.prepare(store, checkpoint, { tableCache });
    expect(Object.keys(timings)).toEqual(expect.arrayContaining(['encoder', 'itemTable', 'warmUp']));
    expect(await isPrepared(store, checkpoint, semanticIds)).toBe(true);
    expect(await isPrepared(store, checkpoint, 'semantic_ids-ffffffffffffffff')).toBe(false);
    expect(tableCache.misses).toBe(1);
    const loaded = await ModelVersion.load(store, { version: 9, checkpointId: checkpoint }, { tableCache });
    loaded.dispose();
    expect({ hits: tableCache.hits, misses: tableCache.misses }).toEqual({ hits: 1, misses: 1 });
  }, 60_000);

  it('a version loaded while another of the same vectors is held shares its HNSW indexes (index cache), text-prior table and text-neighbour lists; the first disposed, the second answers the same', async () => {
    const annCache = new AnnIndexCache(path.join(root, 'shared-ann-cache'));
    const ann = AnnConfig.parse({ index: 'hnsw', hnsw: { m: 8, efConstruction: 40 } });
    const first = await ModelVersion.load(store, { version: 11, checkpointId: checkpoint }, { annCache, ann });
    expect({ misses: annCache.misses, hits: annCache.hits, shared: annCache.shared }).toEqual({ misses: 2, hits: 0, shared: 0 }); // the item and the text index
    // A full collection first: what is shared must be held by the first version itself, not by a
    // wrapper that only happened to be alive.
    collectGarbage();
    const second = await ModelVersion.load(store, { version: 12, checkpointId: checkpoint }, { annCache, ann });
    expect({ misses: annCache.misses, hits: annCache.hits, shared: annCache.shared }).toEqual({ misses: 2, hits: 0, shared: 2 });
    const histories = [['ITEM0', 'ITEM6', 'ITEM12'], ['ITEM3']];
    const exclude = histories.map((h) => new Set(h));
    const before = await second.recommend(histories, 5, exclude);
    expect(await first.recommend(histories, 5, exclude)).toEqual(before);
    // They share the text-prior table (the same embeddings) and the text-neighbour lists: a
    // query item's list computed by one is the other's.
    expect(second.servable.textVectors?.table).toBeDefined();
    expect(second.servable.textVectors?.table).toBe(first.servable.textVectors?.table);
    const item = first.denseId('ITEM21') as number;
    expect(second.ranker.cachedNeighbours(item)).toBeUndefined();
    const misses = second.ranker.stats.neighbourMisses;
    const answer = await first.recommend([['ITEM21']], 5, [new Set()]);
    expect(second.ranker.cachedNeighbours(item)).toBe(first.ranker.cachedNeighbours(item));
    expect(await second.recommend([['ITEM21']], 5, [new Set()])).toEqual(answer);
    expect(second.ranker.stats.neighbourMisses).toBe(misses);
    first.dispose();
    expect(await second.recommend(histories, 5, exclude)).toEqual(before);
    expect(second.similar('ITEM0', 3).map((i) => i.itemId)).not.toContain('ITEM0');
    second.dispose();
    const third = await ModelVersion.load(store, { version: 13, checkpointId: checkpoint }, { annCache, ann });
    expect({ hits: annCache.hits, shared: annCache.shared }).toEqual({ hits: 2, shared: 2 }); // nothing held: from the directory
    // Another index object (read again): lists of its own.
    expect(third.ranker.cachedNeighbours(item)).toBeUndefined();
    expect(await third.recommend([['ITEM21']], 5, [new Set()])).toEqual(answer);
    third.dispose();
  }, 60_000);

  it('answers the same with its ONNX sessions on an inference thread (serving.inferenceThread)', async () => {
    const thread = new InferenceThread();
    const here = await ModelVersion.load(store, { version: 7, checkpointId: checkpoint });
    const there = await ModelVersion.load(store, { version: 7, checkpointId: checkpoint }, { inferenceThread: thread });
    try {
      expect(there.describe().engine).toBe('onnx');
      const rows = [['ITEM0', 'ITEM6', 'ITEM12'], ['ITEM3'], ['ITEM9', 'ITEM1']];
      const exclude = rows.map((r) => new Set(r));
      expect(await there.recommend(rows, 10, exclude)).toEqual(await here.recommend(rows, 10, exclude));
    } finally {
      here.dispose();
      there.dispose();
      await thread.close();
    }
  }, 60_000);

  it('recommends for a user\'s live history: k items, none the user has, with the model and the request id', async () => {
    // The request's log line carries its request id (at debug: one line per request).
    const logFile = path.join(mkdtempSync(path.join(tmpdir(), 'streamrec-request-log-')), 'serve.log');
    const restoreLogs = logToFile(logFile);
    setLogLevel('debug');
    let res: Awaited<ReturnType<typeof app.inject>>;
    try {
      res = await app.inject({ method: 'GET', url: '/v1/users/u1/recommendations?k=5', headers: { 'x-request-id': 'req-1' } });
    } finally {
      setLogLevel(process.env.STREAMREC_LOG_LEVEL ?? 'silent');
      restoreLogs();
    }
    const lines = readFileSync(logFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toContainEqual(expect.objectContaining({ msg: 'request', reqId: 'req-1', route: '/v1/users/:userId/recommendations', status: 200 }));
    expect(res.statusCode).toBe(200);
    expect(res.headers['x-request-id']).toBe('req-1');
    const body = res.json();
    expect(body).toMatchObject({ requestId: 'req-1', userId: 'u1', historyLength: 3, model: { version: 1, checkpointId: checkpoint, modelType: 'ccfrec', items: 60, engine: 'onnx' } });
    expect(body.model.semanticIds).toMatch(/^semantic_ids-/);
    expect(body.fallback).toBeUndefined();
    expect(body.items).toHaveLength(5);
    for (const item of body.items) expect(['ITEM0', 'ITEM6', 'ITEM12']).not.toContain(item.itemId);
    const scores = body.items.map((i: { score: number }) => i.score);
    expect(scores).toEqual([...scores].sort((a, b) => b - a));
    // A generated request id when none (or a malformed one) is sent.
    const other = await app.inject({ method: 'GET', url: '/v1/users/u1/recommendations', headers: { 'x-request-id': 'bad id with spaces' } });
    expect(other.json().requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(other.json().items).toHaveLength(serving.defaultK);
  });

  it('ranks exactly as the model scores (the offline evaluation\'s scores: cosine + tuned prior)', async () => {
    const version = holder.current as ModelVersion;
    const history = ['ITEM3', 'ITEM9', 'ITEM15'];
    const expected = tf.tidy(() => Array.from(version.servable.scores(version.servable.batchOf([history])).dataSync()));
    const ranked = expected
      .map((score, dense) => ({ score, itemId: version.servable.items.externalId(dense) }))
      .filter((x) => x.itemId !== undefined && !history.includes(x.itemId))
      .sort((a, b) => b.score - a.score)
      .slice(0, 10);
    const res = await app.inject({ method: 'POST', url: '/v1/recommendations', payload: { history, k: 10 } });
    expect(res.statusCode).toBe(200);
    const items = res.json().items as Array<{ itemId: string; score: number }>;
    expect(items.map((i) => i.itemId)).toEqual(ranked.map((r) => r.itemId));
    items.forEach((item, j) => expect(item.score).toBeCloseTo(ranked[j]?.score as number, 5));
    // excludeSeen false keeps the history items rankable.
    const all = await app.inject({ method: 'POST', url: '/v1/recommendations', payload: { history, k: 50, excludeSeen: false } });
    expect(all.json().items).toHaveLength(50);
  });

  it('maps a history to the catalog once: dense histories rank as external ones, unknown ids ignored', async () => {
    const version = holder.current as ModelVersion;
    const history = ['ITEM3', 'NOT-AN-ITEM', 'ITEM9', 'ITEM15'];
    const dense = version.denseHistory(history);
    expect(dense).toEqual(['ITEM3', 'ITEM9', 'ITEM15'].map((id) => version.denseId(id)));
    expect(version.denseId('NOT-AN-ITEM')).toBeUndefined();
    expect(await version.recommendDense([dense], 10, [dense])).toEqual(await version.recommend([history], 10, [new Set(history)]));
    expect(await version.recommendDense([dense], 10, [[]])).toEqual(await version.recommend([history], 10, [new Set()]));
    await expect(version.recommend([['NOT-AN-ITEM']], 10, [new Set()])).rejects.toThrow(/history 0: none of its 1 items is in the model's catalog/);
    await expect(version.recommendDense([[]], 10, [[]])).rejects.toThrow(/history 0 is empty/);
    // A history longer than the model reads: its last maxHistoryLength items, as batchOf cuts it.
    const long = Array.from({ length: version.servable.maxHistoryLength + 7 }, (_, i) => `ITEM${(i * 7) % 60}`);
    const fromDense = denseHistoriesBatch([version.denseHistory(long)], version.servable.maxHistoryLength);
    const fromNames = version.servable.batchOf([long]);
    expect(Array.from(fromDense.items)).toEqual(Array.from(fromNames.items));
    expect(Array.from(fromDense.lengths)).toEqual(Array.from(fromNames.lengths));
    // The live-history route gives what recommend gives for the user's history.
    const res = await app.inject({ method: 'GET', url: '/v1/users/u1/recommendations?k=7' });
    const live = histories.get('u1')?.itemIds ?? [];
    expect(res.json().items).toEqual((await version.recommend([live], 7, [new Set(live)]))[0]);
  });

  it('with excludeSeen=false keeps the user\'s own items rankable on the live-history route; the popular fallback has none of them to leave out', async () => {
    const version = holder.current as ModelVersion;
    const live = histories.get('u1')?.itemIds ?? [];
    const [all] = await version.recommend([live], 10, [new Set()]);
    // The text prior ranks a history's own items high: without exclusion some are in the top 10.
    expect(all?.filter((i) => live.includes(i.itemId)).length).toBeGreaterThan(0);
    const kept = await app.inject({ url: '/v1/users/u1/recommendations?k=10&excludeSeen=false' });
    expect(kept.statusCode).toBe(200);
    expect(kept.json().items).toEqual(all);
    const left = await app.inject({ url: '/v1/users/u1/recommendations?k=10&excludeSeen=true' });
    expect(left.json().items.filter((i: { itemId: string }) => live.includes(i.itemId))).toEqual([]);
    // u3's only item is not in the catalog, so no popular item is one of theirs: the flag changes nothing.
    const popular = await Promise.all(['true', 'false'].map((flag) => app.inject({ url: `/v1/users/u3/recommendations?k=3&excludeSeen=${flag}` })));
    expect(popular.map((res) => res.json().fallback)).toEqual(['popular', 'popular']);
    expect(popular[1]?.json().items).toEqual(popular[0]?.json().items);
  });

  it('falls back to the popular items of the recent window for a user without a usable history', async () => {
    for (const userId of ['nobody', 'u3']) {
      const res = await app.inject({ method: 'GET', url: `/v1/users/${userId}/recommendations?k=3` });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toMatchObject({ fallback: 'popular', historyLength: 0 });
      // Every history item counts once; ties in id order.
      expect(res.json().items.map((i: { itemId: string }) => i.itemId)).toEqual(['ITEM0', 'ITEM12', 'ITEM3']);
    }
  });

  it('finds similar items in the item space, never the item itself; an unknown item is a 404', async () => {
    const res = await app.inject({ method: 'GET', url: '/v1/items/ITEM5/similar?k=4' });
    expect(res.statusCode).toBe(200);
    expect(res.json().items).toHaveLength(4);
    expect(res.json().items.map((i: { itemId: string }) => i.itemId)).not.toContain('ITEM5');
    const missing = await app.inject({ method: 'GET', url: '/v1/items/NOPE/similar' });
    expect(missing.statusCode).toBe(404);
    expect(missing.json().error).toMatchObject({ code: 'unknown_item', field: 'path.itemId' });
  });

  it('answers bad requests with a 4xx naming the field', async () => {
    const cases: Array<[InjectOptions, number, string | RegExp]> = [
      [{ method: 'GET', url: '/v1/users/u1/recommendations?k=0' }, 400, /query\.k: k must be at least 1/],
      [{ method: 'GET', url: '/v1/users/u1/recommendations?k=51' }, 400, /query\.k: k must be at most 50/],
      [{ method: 'GET', url: '/v1/users/u1/recommendations?k=ten' }, 400, /query\.k: k must be a whole number \(got string "ten"\)/],
      [{ method: 'GET', url: '/v1/users/u1/recommendations?k=3&colour=red' }, 400, /unknown query parameter\(s\): colour/],
      [{ method: 'GET', url: '/v1/users/u1/recommendations?excludeSeen=maybe' }, 400, /query\.excludeSeen: expected true or false/],
      [{ method: 'GET', url: `/v1/users/${'x'.repeat(300)}/recommendations` }, 400, /path\.userId: userId is longer than 256 characters/],
      [{ method: 'GET', url: '/v1/users/a%01b/recommendations' }, 400, /path\.userId: userId holds control characters/],
      // Refused by the router before routing (fastify's frameworkErrors), in the same envelope.
      [{ method: 'GET', url: `/v1/users/${'x'.repeat(2000)}/recommendations` }, 400, /path\.userId: userId is longer than 256 characters \(got string "x{40}\.\.\." \(2000 chars\)\)/],
      [{ method: 'GET', url: '/v1/users/%zz/recommendations' }, 400, /path\.userId: not valid percent-encoding \(got string "%zz"\)/],
      [{ method: 'POST', url: '/v1/recommendations?x=1', payload: { history: ['ITEM1'] } }, 400, /unknown query parameter\(s\): x/],
      [{ method: 'POST', url: '/v1/search?x=1', payload: { query: 'beaker' } }, 400, /unknown query parameter\(s\): x/],
      [{ method: 'POST', url: '/v1/recommendations', payload: '{"history": [', headers: { 'content-type': 'application/json' } }, 400, /JSON/],
      [{ method: 'POST', url: '/v1/recommendations', payload: 'history=ITEM1', headers: { 'content-type': 'application/x-www-form-urlencoded' } }, 415, /send application\/json/],
      [{ method: 'POST', url: '/v1/recommendations', payload: 'ITEM1', headers: { 'content-type': 'text/plain' } }, 415, /not supported/],
      [{ method: 'POST', url: '/v1/recommendations', payload: { history: ['ITEM1'], extra: 1 } }, 400, /unknown body field\(s\): extra/],
      [{ method: 'POST', url: '/v1/recommendations', payload: { history: [] } }, 400, /body\.history: history must hold at least one item id/],
      [{ method: 'POST', url: '/v1/recommendations', payload: { history: 'ITEM1' } }, 400, /body\.history/],
      [{ method: 'POST', url: '/v1/recommendations', payload: { history: ['ITEM1', 'GHOST'] } }, 400, /body\.history\.1: item "GHOST" is not in the model's catalog/],
      [{ method: 'POST', url: '/v1/recommendations', payload: { history: Array.from({ length: 101 }, () => 'ITEM1') } }, 400, /history holds more than 100 item ids/],
      [{ method: 'POST', url: '/v1/recommendations', payload: { history: ['ITEM1'], k: 2.5 } }, 400, /body\.k: k must be an integer/],
      [{ method: 'POST', url: '/v1/recommendations', payload: { history: Array.from({ length: 90 }, () => 'ITEM1'.repeat(20)) } }, 413, /body/i],
      [{ method: 'POST', url: '/v1/recommendations', payload: [1, 2] }, 400, /body/],
      [{ method: 'GET', url: '/v1/nowhere' }, 404, /no route GET \/v1\/nowhere/],
    ];
    for (const [request, status, message] of cases) {
      const res = await app.inject(request);
      expect({ url: request.url, status: res.statusCode }).toEqual({ url: request.url, status });
      expect(res.json().error.message).toMatch(message);
      expect(res.json().requestId).toBeDefined();
    }
  });

  it('answers what the router refuses before routing (an id over its length limit, malformed percent-encoding) like any bad request: envelope, request id, field, counted', async () => {
    const metrics = new ServingMetrics();
    const server = buildServer({ config: serving, models: holder, histories, registry, metrics });
    const { Error: ErrorEnvelope } = apiSchemas(serving);
    try {
      const cases: Array<[string, string, string, RegExp]> = [
        [`/v1/users/${'x'.repeat(1025)}/recommendations?k=3`, 'path.userId', 'invalid_request', /^path\.userId: userId is longer than 256 characters \(got string "x+\.\.\." \(1025 chars\)\)$/],
        [`/v1/items/${encodeURIComponent('é'.repeat(3000))}/similar`, 'path.itemId', 'invalid_request', /^path\.itemId: itemId is longer than 256 characters \(got string "é+\.\.\." \(3000 chars\)\)$/],
        ['/v1/users/%zz/recommendations', 'path.userId', 'malformed_url', /^path\.userId: not valid percent-encoding \(got string "%zz"\)$/],
        ['/v1/items/ITEM%4/similar?k=2', 'path.itemId', 'malformed_url', /^path\.itemId: not valid percent-encoding \(got string "ITEM%4"\)$/],
        ['/v1/%zz/recommendations', 'path', 'malformed_url', /^path: not valid percent-encoding \(got string "\/v1\/%zz\/recommendations"\)$/],
      ];
      for (const [i, [url, field, code, message]] of cases.entries()) {
        const res = await server.inject({ url, headers: { 'x-request-id': `refused-${i}` } });
        const body = res.json();
        expect({ status: res.statusCode, header: res.headers['x-request-id'], body }).toEqual({ status: 400, header: `refused-${i}`, body: { requestId: `refused-${i}`, error: { code, message: expect.stringMatching(message), field } } });
        expect(ErrorEnvelope.safeParse(body).success).toBe(true);
      }
      const refused = (await metrics.responses.get()).values.map((v) => [v.labels.route, v.labels.status, v.value]);
      expect(refused).toEqual(
        expect.arrayContaining([
          ['/v1/users/:userId/recommendations', '400', 2],
          ['/v1/items/:itemId/similar', '400', 2],
          ['unmatched', '400', 1],
        ]),
      );
      expect(refused).toHaveLength(3);
    } finally {
      await server.close();
    }
  });

  it('answers thousands of generated bad requests with the 4xx their fault calls for, naming the field, never a 5xx', async () => {
    // Every generated request is bad in one known way (the rest of it is valid), so each answer is
    // checked for the status and the field: an accepted bad request fails the test as a 5xx does.
    const rng = new Random(17);
    const pick = <T>(xs: readonly T[]): T => xs[rng.int(xs.length)] as T;
    const text = (max: number, from = 0x21, span = 0x3000): string => Array.from({ length: 1 + rng.int(max) }, () => String.fromCharCode(from + rng.int(span))).join('');
    const printable = (): string => text(30).replace(/[\u007f-\u009f]/g, 'x');
    const validK = (): number => 1 + rng.int(50);
    const badKQuery = ['0', '-1', '51', '1000', '2.5', 'ten', '', '1e3', ' 3', '0x10', '99999999999'];
    const badKBody: unknown[] = [0, -1, 51, 2.5, '3', null, true, [], {}, 1e12];
    // Long ids from 257 characters to past the router's maxParamLength (1,024: refused before routing).
    const badId = (): string => pick(['x'.repeat(257 + rng.int(2000)), `a${String.fromCharCode(rng.int(0x20))}b`, `${text(5)}\u007f`]);
    /** Percent-encoding that does not decode: a bad hex digit, a cut escape, bytes that are not UTF-8. */
    const badEscape = (): string => pick(['%zz', '%', '%4', '%g1', '%C3%28', '%E0%A4', '%FF']);
    const json = { 'content-type': 'application/json' };
    type Case = { request: InjectOptions; status: number; field: string };
    const cases: Array<() => Case> = [
      () => ({ request: { url: `/v1/users/${encodeURIComponent(printable())}/recommendations?k=${encodeURIComponent(pick(badKQuery))}` }, status: 400, field: 'query.k' }),
      () => ({ request: { url: `/v1/users/${encodeURIComponent(badId())}/recommendations?k=${validK()}` }, status: 400, field: 'path.userId' }),
      () => {
        const name = `p${printable()}`;
        return { request: { url: `/v1/users/u1/recommendations?${encodeURIComponent(name)}=1` }, status: 400, field: `query.${name}` };
      },
      () => ({ request: { url: `/v1/users/u1/recommendations?excludeSeen=${encodeURIComponent(pick(['yes', '1', 'TRUE', '', printable()]))}` }, status: 400, field: 'query.excludeSeen' }),
      () => ({ request: { url: `/v1/items/ITEM${rng.int(60)}/similar?k=${encodeURIComponent(pick(badKQuery))}` }, status: 400, field: 'query.k' }),
      () => ({ request: { url: `/v1/items/${encodeURIComponent(`GHOST-${printable()}`)}/similar` }, status: 404, field: 'path.itemId' }),
      () => ({ request: { url: `/v1/items/${encodeURIComponent(badId())}/similar` }, status: 400, field: 'path.itemId' }),
      () => ({ request: { url: `/v1/users/${encodeURIComponent(printable())}${badEscape()}/recommendations?k=${validK()}` }, status: 400, field: 'path.userId' }),
      () => ({ request: { url: `/v1/items/${badEscape()}ITEM${rng.int(60)}/similar` }, status: 400, field: 'path.itemId' }),
      () => {
        const [history, field] = pick<[unknown, string]>([
          [[], 'body.history'],
          [pick([null, 'ITEM1', 7, {}]), 'body.history'],
          [['ITEM1', pick([7, null, {}, ['ITEM2']])], 'body.history.1'],
          [['ITEM1', `GHOST-${printable()}`], 'body.history.1'],
          [[badId()], 'body.history.0'],
          [Array.from({ length: 101 + rng.int(50) }, () => 'ITEM1'), 'body.history'],
        ]);
        return { request: { method: 'POST', url: '/v1/recommendations', payload: { history, k: validK() } }, status: 400, field };
      },
      () => ({ request: { method: 'POST', url: '/v1/recommendations', payload: { history: ['ITEM1'], k: pick(badKBody) } }, status: 400, field: 'body.k' }),
      () => ({ request: { method: 'POST', url: '/v1/recommendations', payload: { history: ['ITEM1'], excludeSeen: pick(['true', 1, null, 'no']) } }, status: 400, field: 'body.excludeSeen' }),
      () => {
        const name = `f${printable()}`;
        return { request: { method: 'POST', url: '/v1/recommendations', payload: { history: ['ITEM2'], [name]: pick(badKBody) } }, status: 400, field: `body.${name}` };
      },
      () => ({ request: { method: 'POST', url: '/v1/recommendations', payload: text(60, 0x20, 0x60).replace(/^[[{]/, '('), headers: json }, status: 400, field: 'body' }),
      () => ({ request: { method: 'POST', url: pick(['/v1/recommendations', '/v1/search']), payload: 'history=ITEM1', headers: { 'content-type': pick(['text/html', 'application/xml', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) } }, status: 415, field: 'header.content-type' }),
      () => ({ request: { method: 'POST', url: '/v1/recommendations', payload: JSON.stringify({ history: Array.from({ length: 90 }, () => 'ITEM1'.repeat(10 + rng.int(20))) }), headers: json }, status: 413, field: 'body' }),
      () => ({ request: { method: 'POST', url: '/v1/search', payload: { query: pick<unknown>(['', 'x'.repeat(2001), 7, null, ['beaker']]) } }, status: 400, field: 'body.query' }),
      () => ({ request: { method: 'POST', url: '/v1/search', payload: { query: printable(), k: pick(badKBody) } }, status: 400, field: 'body.k' }),
      () => ({ request: { method: 'POST', url: '/v1/search', payload: { query: 'beaker', [`x${printable()}`]: 1 } }, status: 400, field: 'body.x' }),
      () => {
        const name = `q${printable()}`;
        const [url, payload] = pick<[string, object]>([
          ['/v1/recommendations', { history: ['ITEM1'], k: validK() }],
          ['/v1/search', { query: 'beaker', k: validK() }],
        ]);
        return { request: { method: 'POST', url: `${url}?${encodeURIComponent(name)}=${encodeURIComponent(printable())}`, payload }, status: 400, field: `query.${name}` };
      },
    ];
    const seen = new Map<string, number>();
    for (let i = 0; i < 3000; i++) {
      const kind = rng.int(cases.length);
      const { request, status, field } = (cases[kind] as () => Case)();
      const res = await app.inject(request);
      const body = res.statusCode === 200 ? undefined : (res.json() as { error?: { message?: string; field?: string } });
      const got = { status: res.statusCode, field: body?.error?.field?.slice(0, field.length) };
      if (got.status !== status || got.field !== field || !(body?.error?.message ?? '').length) {
        throw new Error(`generated bad request ${i} (kind ${kind}, ${request.method ?? 'GET'} ${String(request.url).slice(0, 120)}): expected ${status} naming ${field}, got ${res.statusCode} ${res.body.slice(0, 300)}`);
      }
      seen.set(`${kind}:${status}`, (seen.get(`${kind}:${status}`) ?? 0) + 1);
    }
    expect(seen.size).toBe(cases.length); // every kind was generated
  }, 120_000);

  it('searches items by free text through the catalog\'s encoder and PCA; without an encoder search says why', async () => {
    const spec = await createTextEncoderSpec(config.features);
    const withSearch = await ModelVersion.load(store, (await registry.live())!, { textSpec: spec });
    try {
      if ('unavailable' in withSearch.search) throw new Error(withSearch.search.unavailable);
      // Tiny texts are "<word> <colour> kit model<i>. ... <word> supplies.": item i has word i % 6 (5: beaker).
      const hits = await withSearch.search.search('beaker supplies', 5);
      expect(hits).toHaveLength(5);
      expect(hits.filter((h) => Number(h.itemId.slice(4)) % 6 === 5).length).toBeGreaterThanOrEqual(4);
      expect(await withSearch.search.search('zzzz qqqq', 5)).toEqual([]);
    } finally {
      withSearch.dispose();
      await spec.dispose();
    }
    const res = await app.inject({ method: 'POST', url: '/v1/search', payload: { query: 'beaker', k: 3 } });
    expect(res.statusCode).toBe(409);
    expect(res.json().error.message).toMatch(/search is not available: this server has no text encoder configured/);
    const bad = await app.inject({ method: 'POST', url: '/v1/search', payload: { query: '' } });
    expect(bad.json().error).toMatchObject({ field: 'body.query' });
  });

  it('serves /healthz, /readyz, /metrics and /openapi.json', async () => {
    expect((await app.inject({ url: '/healthz' })).statusCode).toBe(200);
    const ready = await app.inject({ url: '/readyz' });
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toMatchObject({ ready: true, reasons: [], model: { version: 1 } });
    const metrics = (await app.inject({ url: '/metrics' })).body;
    expect(metrics).toMatch(/streamrec_serving_model_version 1/);
    expect(metrics).toMatch(/streamrec_serving_items 60/);
    expect(metrics).toMatch(/# TYPE streamrec_serving_swaps_total counter\nstreamrec_serving_swaps_total 1\n/);
    expect(metrics).toMatch(/# TYPE streamrec_serving_failed_swaps_total counter\nstreamrec_serving_failed_swaps_total 0\n/);
    // The histories were put at the start of the suite: their newest change is seconds old, not more.
    const staleness = Number(/streamrec_serving_history_staleness_seconds ([\d.e-]+)/.exec(metrics)?.[1]);
    expect(staleness).toBeGreaterThanOrEqual(0);
    expect(staleness).toBeLessThan(120);
    expect(metrics).toMatch(/streamrec_serving_history_users 3/);
    expect(metrics).toMatch(/nodejs_eventloop_lag_p99_seconds/);
    expect(metrics).toMatch(/streamrec_serving_request_seconds_bucket\{le="0.005",route="\/v1\/users\/:userId\/recommendations"\}/);
    expect(metrics).toMatch(/streamrec_serving_responses_total\{route="\/v1\/recommendations",status="400"\}/);
    const openapi = (await app.inject({ url: '/openapi.json' })).json();
    expect(openapi.openapi).toBe('3.1.0');
    expect(Object.keys(openapi.paths)).toEqual(expect.arrayContaining(['/v1/users/{userId}/recommendations', '/v1/recommendations', '/v1/items/{itemId}/similar', '/v1/search']));
    const k = openapi.paths['/v1/users/{userId}/recommendations'].get.parameters.find((p: { name: string }) => p.name === 'k');
    expect(k).toMatchObject({ in: 'query', required: false });
  });

  it('answers /readyz 503 with the reason when no model is loaded, when the histories are catching up, and when their newest change is too old', async () => {
    let now = 10_000;
    const stale = new MemoryHistories(() => now);
    stale.put('u1', ['ITEM1'], [1]);
    now += 5_000;
    const catchingUp: HistoryView = { get: () => undefined, values: () => [], stats: () => ({ users: 0, caughtUp: false, newestChangeAgeMs: undefined }) };
    const empty = new ModelHolder(() => Promise.reject(new Error('nothing is loaded in this test')));
    const fresher = { ...serving, readyMaxStalenessMs: 10_000 };
    const strict = { ...serving, readyMaxStalenessMs: 2_000 };
    const cases: Array<[string, Parameters<typeof buildServer>[0], number, string[]]> = [
      ['no model', { config: serving, models: empty, histories }, 503, ['no model loaded']],
      ['catching up', { config: serving, models: holder, histories: catchingUp }, 503, ['histories are catching up with the changelog']],
      ['too old', { config: strict, models: holder, histories: stale }, 503, ['the newest history change is 5 s old']],
      ['fresh enough', { config: fresher, models: holder, histories: stale }, 200, []],
      ['all', { config: strict, models: empty, histories: { ...catchingUp, stats: () => ({ users: 0, caughtUp: false, newestChangeAgeMs: 3_000 }) } }, 503, ['no model loaded', 'histories are catching up with the changelog', 'the newest history change is 3 s old']],
    ];
    for (const [what, options, status, reasons] of cases) {
      const server = buildServer(options);
      try {
        const res = await server.inject({ url: '/readyz' });
        expect({ what, status: res.statusCode, ready: res.json().ready, reasons: res.json().reasons }).toEqual({ what, status, ready: status === 200, reasons });
      } finally {
        await server.close();
      }
    }
  });

  it('shows no history staleness sample on /metrics while it is unknown (no change read yet, or not tracked), and the age once known', async () => {
    let now = 10_000;
    const memory = new MemoryHistories(() => now);
    const servers = [memory, new LocalHistories({ get: () => undefined, values: () => [], size: 0 })].map((h) => buildServer({ config: serving, models: holder, histories: h }));
    const staleness = async (server: FastifyInstance): Promise<string | undefined> => {
      const text = (await server.inject({ url: '/metrics' })).body;
      expect(text).toMatch(/# TYPE streamrec_serving_history_staleness_seconds gauge/);
      return /^streamrec_serving_history_staleness_seconds(?:\{[^}]*\})? (.*)$/m.exec(text)?.[1];
    };
    try {
      const [fromMemory, fromLocal] = servers as [FastifyInstance, FastifyInstance];
      expect(await staleness(fromMemory)).toBeUndefined();
      expect(await staleness(fromLocal)).toBeUndefined();
      memory.put('u1', ['ITEM1'], [1]);
      now += 2_500;
      expect(await staleness(fromMemory)).toBe('2.5');
      expect(await staleness(fromLocal)).toBeUndefined();
    } finally {
      await Promise.all(servers.map((server) => server.close()));
    }
  });

  it('sends only what the response schemas hold; with validateResponses a response that breaks its schema is a 500 with the reason logged', async () => {
    expect(serving.validateResponses).toBe(true); // the default
    const real = ModelVersion.prototype.describe;
    const spy = jest.spyOn(ModelVersion.prototype, 'describe');
    const loose = buildServer({ config: { ...serving, validateResponses: false }, models: holder, histories, registry });
    const strict = buildServer({ config: serving, models: holder, histories, registry });
    const errors: string[] = [];
    strict.addHook('onError', async (_request, _reply, error) => void errors.push(error.message));
    try {
      await Promise.all([loose.ready(), strict.ready()]);
      // A field the schema does not have is not written (the response is serialized from the schema).
      spy.mockImplementation(function (this: ModelVersion) {
        return { ...real.call(this), internalPath: '/secret' } as ReturnType<ModelVersion['describe']>;
      });
      const trimmed = await loose.inject({ url: '/v1/users/u1/recommendations?k=3' });
      expect(trimmed.statusCode).toBe(200);
      expect(trimmed.json().model).not.toHaveProperty('internalPath');
      expect(trimmed.json().model.version).toBe(1);
      // validateResponses checks fields and values: the same response is refused, the reason logged.
      const checked = await strict.inject({ url: '/v1/users/u1/recommendations?k=3' });
      expect(checked.statusCode).toBe(500);
      expect(checked.json().error.code).toBe('internal');
      expect(errors).toEqual([expect.stringMatching(/GET \/v1\/users\/:userId\/recommendations answered 200 with a response that breaks its schema at model: Unrecognized key/)]);
      spy.mockImplementation(function (this: ModelVersion) {
        return { ...real.call(this), version: 'one' } as unknown as ReturnType<ModelVersion['describe']>;
      });
      expect((await strict.inject({ url: '/v1/items/ITEM1/similar?k=3' })).statusCode).toBe(500);
      expect(errors[1]).toMatch(/breaks its schema at model\.version/);
      spy.mockRestore();
      const fine = await strict.inject({ url: '/v1/items/ITEM1/similar?k=3' });
      expect(fine.statusCode).toBe(200);
      expect(fine.json().items).toHaveLength(3);
    } finally {
      spy.mockRestore();
      await Promise.all([loose.close(), strict.close()]);
    }
  });

  it('guards /admin/reload with the API key (and a server without one has no admin endpoints)', async () => {
    expect((await app.inject({ method: 'POST', url: '/admin/reload' })).statusCode).toBe(401);
    expect((await app.inject({ method: 'POST', url: '/admin/reload', headers: { 'x-api-key': 'open sesame' } })).statusCode).toBe(401);
    const ok = await app.inject({ method: 'POST', url: '/admin/reload', headers: { 'x-api-key': 'sesame' } });
    expect(ok.statusCode).toBe(200);
    expect(ok.json().outcome).toEqual({ kind: 'unchanged', version: 1 });
    const closed = buildServer({ config: ServingConfig.parse({}), models: holder, histories, registry });
    expect((await closed.inject({ method: 'POST', url: '/admin/reload', headers: { 'x-api-key': '' } })).statusCode).toBe(404);
    await closed.close();
  });

  it('finishes a request in flight on the version it started with while the server swaps, then frees that version', async () => {
    const before = holder.current as ModelVersion;
    // Hold the next ranking call until the swap is done.
    let reached!: () => void;
    const inside = new Promise<void>((resolve) => (reached = resolve));
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const real = before.recommendDense.bind(before);
    const held = jest.spyOn(before, 'recommendDense').mockImplementationOnce(async (...args) => {
      reached();
      await gate;
      return real(...args);
    });
    try {
      const slow = app.inject({ method: 'POST', url: '/v1/recommendations', payload: { history: ['ITEM1', 'ITEM2'], k: 5 } });
      await inside;
      expect(before.inFlight).toBe(1);
      await registry.publish({ checkpointId: checkpoint, evaluation: EVAL });
      expect((await holder.syncWith(registry)).kind).toBe('swapped');
      const after = holder.current as ModelVersion;
      expect(after).not.toBe(before);
      // New requests get the new version; the held one still has the old, which is not freed under it.
      const fresh = await app.inject({ method: 'POST', url: '/v1/recommendations', payload: { history: ['ITEM1', 'ITEM2'], k: 5 } });
      expect(fresh.json().model.version).toBe(after.published.version);
      expect((before as unknown as { disposed: boolean }).disposed).toBe(false);
      open();
      const res = await slow;
      expect(res.statusCode).toBe(200);
      expect(res.json().model.version).toBe(before.published.version);
      expect(res.json().items.map((i: { itemId: string }) => i.itemId)).toEqual(fresh.json().items.map((i: { itemId: string }) => i.itemId)); // same checkpoint
      expect(before.inFlight).toBe(0);
      expect((before as unknown as { disposed: boolean }).disposed).toBe(true);
    } finally {
      open();
      held.mockRestore();
    }
  });

  it('swaps versions under load without failing a request, and keeps serving when a version is corrupt or does not fit', async () => {
    // A truncated weight file and a checkpoint whose config does not fit its weights.
    const truncated = path.join(store.root, 'checkpoint', 'checkpoint-00000000000000aa');
    cpSync(path.join(store.root, 'checkpoint', checkpoint), truncated, { recursive: true });
    const manifest = JSON.parse(readFileSync(path.join(truncated, 'manifest.json'), 'utf8'));
    manifest.id = 'checkpoint-00000000000000aa';
    writeFileSync(path.join(truncated, 'manifest.json'), JSON.stringify(manifest));
    const weight = path.join(truncated, 'encoder.positionEmbedding.npy');
    writeFileSync(weight, readFileSync(weight).subarray(0, 40));
    const misfit = path.join(store.root, 'checkpoint', 'checkpoint-00000000000000bb');
    cpSync(path.join(store.root, 'checkpoint', checkpoint), misfit, { recursive: true });
    const other = JSON.parse(readFileSync(path.join(misfit, 'manifest.json'), 'utf8'));
    other.id = 'checkpoint-00000000000000bb';
    other.settings.model.nLayers = 2;
    writeFileSync(path.join(misfit, 'manifest.json'), JSON.stringify(other));

    const start = holder.current?.published.version as number; // the version serving before this test
    let failures = 0;
    let done = 0;
    const versions = new Set<number>();
    const load = async (): Promise<void> => {
      const deadline = Date.now() + 4000;
      while (Date.now() < deadline) {
        const res = await app.inject({ method: 'POST', url: '/v1/recommendations', payload: { history: ['ITEM1', 'ITEM2'], k: 5 } });
        if (res.statusCode !== 200) failures++;
        else versions.add(res.json().model.version);
        done++;
      }
    };
    const clients = Promise.all([load(), load(), load(), load()]);
    const swaps: string[] = [];
    const errors: string[] = [];
    const logFile = path.join(mkdtempSync(path.join(tmpdir(), 'streamrec-swap-log-')), 'serve.log');
    const restoreLogs = logToFile(logFile);
    setLogLevel('info');
    try {
      for (const id of [checkpoint, 'checkpoint-00000000000000aa', checkpoint, 'checkpoint-00000000000000bb', checkpoint]) {
        await registry.publish({ checkpointId: id, evaluation: EVAL });
        const outcome = await holder.syncWith(registry);
        swaps.push(outcome.kind);
        if (outcome.kind === 'failed') errors.push(outcome.error);
      }
      await clients;
    } finally {
      setLogLevel(process.env.STREAMREC_LOG_LEVEL ?? 'silent');
      restoreLogs();
    }
    // A rejected version is one clear log line each: which version and checkpoint, and why.
    const rejected = readFileSync(logFile, 'utf8').split('\n').filter((l) => l.includes('model version rejected')).map((l) => JSON.parse(l) as { checkpointId: string; err: { message: string } });
    expect(rejected.map((r) => r.checkpointId)).toEqual(['checkpoint-00000000000000aa', 'checkpoint-00000000000000bb']);
    expect(rejected[0]?.err.message).toMatch(/encoder\.positionEmbedding/);
    expect(failures).toBe(0);
    expect(done).toBeGreaterThan(20);
    expect(swaps).toEqual(['swapped', 'failed', 'swapped', 'failed', 'swapped']);
    // What is logged and reported for a rejected version says what is wrong with it.
    expect(errors[0]).toMatch(/encoder\.positionEmbedding/);
    expect(errors[1]).toMatch(/shape|layer/i);
    expect(holder.current?.published.version).toBe(start + 5);
    expect(holder.failedSwaps).toBe(2);
    expect([...versions].every((v) => [start, start + 1, start + 3, start + 5].includes(v))).toBe(true);
    const metrics = (await app.inject({ url: '/metrics' })).body;
    expect(metrics).toMatch(/streamrec_serving_failed_swaps_total 2/);
    expect(metrics).toMatch(new RegExp(`streamrec_serving_model_version ${start + 5}\\b`));
  }, 60_000);
});
