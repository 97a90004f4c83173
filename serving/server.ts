import fs from 'node:fs/promises';
import { createHash, randomUUID, timingSafeEqual } from 'node:crypto';
import fastJson from 'fast-json-stringify';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { z } from 'zod';
import { StreamrecError, ValidationError, describeValue } from '../errors';
import type { ModelRegistry } from '../infra/registry';
import { createLogger } from '../logging';
import type { ServingConfig } from '../schemas/serving';
import { STREAMREC_VERSION } from '../version';
import { apiSchemas, jsonSchemaOf, openApiDocument } from './api';
import type { ClusterLink } from './cluster';
import type { HistoryView } from './historyView';
import { ServingMetrics } from './metrics';
import type { ModelHolder } from './modelHolder';
import type { ModelVersion, ScoredItem } from './modelVersion';
import { PopularItems } from './popular';

const log = createLogger('serving.http');

/** A request the server refuses, with the HTTP status, a code and the field at fault. */
export class RequestError extends StreamrecError {
  override readonly code = 'request';
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
    readonly field?: string,
  ) {
    super(message, field ? { context: { field } } : {});
  }
}

export interface ServerOptions {
  readonly config: ServingConfig;
  readonly models: ModelHolder;
  readonly histories: HistoryView;
  /** Where `/admin/reload` looks for the live version. */
  readonly registry?: ModelRegistry;
  readonly metrics?: ServingMetrics;
  /** Set in a worker of a serving cluster (serving/cluster.ts): /metrics and /admin/reload then speak for every worker. */
  readonly cluster?: ClusterLink;
}

/** A response that does not match its schema (serving.validateResponses): a bug of the server, answered 500. */
class ResponseSchemaError extends StreamrecError {
  override readonly code = 'response_schema';
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Parses `value` with `schema`; a failure is a 400 naming the first bad field, what was expected and what came. */
function parse<S extends z.ZodType>(schema: S, value: unknown, where: 'query' | 'path' | 'body'): z.output<S> {
  const result = schema.safeParse(value ?? {});
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  if (issue?.code === 'unrecognized_keys') {
    const prefix = issue.path.length > 0 ? `${issue.path.join('.')}.` : '';
    throw new RequestError(400, 'unknown_field', `unknown ${where === 'query' ? 'query parameter' : `${where} field`}(s): ${issue.keys.map((k) => prefix + k).join(', ')}`, `${where}.${prefix}${issue.keys[0]}`);
  }
  const path = issue?.path.map(String).join('.') ?? '';
  const field = path ? `${where}.${path}` : where;
  let received: unknown = value;
  for (const key of issue?.path ?? []) received = received !== null && typeof received === 'object' ? (received as Record<PropertyKey, unknown>)[key as PropertyKey] : undefined;
  throw new RequestError(400, 'invalid_request', `${field}: ${issue?.message ?? 'invalid'} (got ${describeValue(received)})`, field);
}

/** `text` percent-decoded, or as it came where it is not valid percent-encoding. */
function decodedOrRaw(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** Equal API keys, compared in constant time (over their digests, so lengths do not leak either). */
function sameKey(given: string, expected: string): boolean {
  const digest = (s: string): Buffer => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(given), digest(expected));
}

/**
 * The serving API (fastify): recommendations for a user's live history or a given history,
 * similar items, and the operations endpoints. Requests and responses follow serving/api.ts;
 * bad requests get a 4xx naming the field, never a 5xx.
 */
export function buildServer(options: ServerOptions): FastifyInstance {
  const { config, models, histories } = options;
  const metrics = options.metrics ?? new ServingMetrics();
  const schemas = apiSchemas(config);
  const popular = new PopularItems(histories, { windowMs: config.popularWindowMs, refreshMs: config.popularRefreshMs, keep: Math.max(config.maxK * 4, 1000) });
  const app = Fastify({
    loggerInstance: log as FastifyBaseLogger,
    // One debug line per request from the onResponse hook instead of fastify's two info lines.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: config.bodyLimitBytes,
    // Long ids reach the handlers (and get a message naming the field); longer ones still are
    // refused by the router, in the same envelope (refuseUnrouted).
    routerOptions: { maxParamLength: Math.max(100, config.maxIdLength * 4) },
    frameworkErrors: (error, request, reply) => refuseUnrouted(error, request, reply),
    requestIdHeader: false,
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    },
    return503OnClosing: true,
    forceCloseConnections: 'idle',
  });
  // JSON only: any other body type is refused with 415.
  app.removeContentTypeParser('text/plain');
  app.addHook('onClose', async () => popular.close());

  app.addHook('onRequest', async (request, reply) => {
    void reply.header('x-request-id', request.id);
  });
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    const seconds = reply.elapsedTime / 1000; // fastify's clock, from the request's start to the response's end
    metrics.latency.observe({ route }, seconds);
    metrics.responses.inc({ route, status: String(reply.statusCode) });
    request.log.debug({ reqId: request.id, route, status: reply.statusCode, ms: Math.round(seconds * 1e4) / 10 }, 'request');
  });

  const fail = (reply: FastifyReply, request: FastifyRequest, status: number, code: string, message: string, field?: string): FastifyReply =>
    reply.code(status).send({ requestId: request.id, error: { code, message, ...(field ? { field } : {}) } });

  /** The routes with a path parameter, by the shape of their paths: what names the field of a request refused before routing. */
  const paramRoutes: Array<{ readonly method: string; readonly url: string; readonly param: string; readonly shape: RegExp }> = [];

  /**
   * Requests the router refuses before any route runs (fastify's frameworkErrors: no hooks, no
   * error handler): a path parameter longer than the router's maxParamLength
   * (FST_ERR_MAX_PARAM_LENGTH, fastify's own answer a bare 414) and a path that is not valid
   * percent-encoding (FST_ERR_BAD_URL). Answered 400 in the error envelope with the request id,
   * naming the parameter when the path has a route's shape (else `path`), and counted.
   */
  function refuseUnrouted(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
    const pathname = request.url.split('?')[0] ?? '';
    const route = paramRoutes.find((r) => r.method === request.method && r.shape.test(pathname));
    const raw = route ? (route.shape.exec(pathname)?.[1] ?? '') : pathname;
    const field = route ? `path.${route.param}` : 'path';
    let refused: RequestError;
    if (error.code === 'FST_ERR_MAX_PARAM_LENGTH') {
      // The router measures the decoded value; its limit is above maxIdLength, so the id is too long.
      const what = route ? route.param : 'a path parameter';
      refused = new RequestError(400, 'invalid_request', `${field}: ${what} is longer than ${config.maxIdLength} characters (got ${describeValue(decodedOrRaw(raw))})`, field);
    } else {
      // FST_ERR_BAD_URL (the third kind, FST_ERR_ASYNC_CONSTRAINT, needs route constraints: none here).
      refused = new RequestError(400, 'malformed_url', `${field}: not valid percent-encoding (got ${describeValue(raw)})`, field);
    }
    void reply.header('x-request-id', request.id);
    fail(reply, request, refused.status, refused.reason, refused.message, refused.field);
    // No onResponse hook runs for these: counted here (with no latency: fastify took no start time).
    metrics.responses.inc({ route: route?.url ?? 'unmatched', status: String(refused.status) });
    request.log.debug({ reqId: request.id, route: route?.url ?? 'unmatched', status: refused.status, fastify: error.code }, 'request refused before routing');
  }

  app.setErrorHandler((error: Error & { statusCode?: number; code?: string }, request, reply) => {
    if (error instanceof RequestError) return fail(reply, request, error.status, error.reason, error.message, error.field);
    if (error instanceof ValidationError) return fail(reply, request, 400, 'invalid_request', error.message, error.context.field);
    const status = error.statusCode;
    if (status !== undefined && status >= 400 && status < 500) {
      const code =
        status === 415 ? 'unsupported_media_type' : status === 413 ? 'body_too_large' : error.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' ? 'empty_body' : error instanceof SyntaxError ? 'malformed_json' : 'bad_request';
      const length = request.headers['content-length'];
      const message =
        status === 415
          ? `content-type ${JSON.stringify(request.headers['content-type'] ?? '')} is not supported: send application/json`
          : status === 413
            ? `body is larger than the limit of ${config.bodyLimitBytes} bytes (${length === undefined ? 'sent chunked' : `content-length ${length}`})`
            : code === 'malformed_json'
              ? `body is not valid JSON: ${error.message}`
              : error.message;
      return fail(reply, request, status, code, message, status === 415 ? 'header.content-type' : 'body');
    }
    request.log.error({ err: error, reqId: request.id, url: request.url }, 'request failed');
    return fail(reply, request, 500, 'internal', 'internal error (logged with the request id)');
  });
  app.setNotFoundHandler((request, reply) => fail(reply, request, 404, 'not_found', `no route ${request.method} ${request.url.split('?')[0]}`));

  // Each API route's responses: serialized from the schemas' JSON Schema (fast-json-stringify:
  // only their fields are written) and, with validateResponses, checked against the zod schemas
  // first, in the serializer itself (a hook per request cost ~3% of the saturated throughput).
  const errorJson = jsonSchemaOf(schemas.Error, 'output');
  const v1 = (method: 'GET' | 'POST', url: string, ok: z.ZodType, handler: (request: FastifyRequest) => Promise<unknown>): void => {
    const param = /:(\w+)/.exec(url)?.[1];
    if (param) paramRoutes.push({ method, url, param, shape: new RegExp(`^${url.replace(`:${param}`, '([^/]*)')}$`) });
    void app.route({
      method,
      url,
      handler,
      schema: { response: { 200: jsonSchemaOf(ok, 'output'), '4xx': errorJson, '5xx': errorJson } },
      serializerCompiler: ({ schema, httpStatus }) => {
        const serialize = fastJson(schema as unknown as Parameters<typeof fastJson>[0]);
        if (!config.validateResponses) return serialize;
        const zodSchema = httpStatus === '200' ? ok : schemas.Error;
        return (payload: unknown): string => {
          const result = zodSchema.safeParse(payload);
          if (!result.success) {
            const issue = result.error.issues[0];
            const at = issue?.path.map(String).join('.') || '(the response)';
            throw new ResponseSchemaError(`${method} ${url} answered ${httpStatus} with a response that breaks its schema at ${at}: ${issue?.message ?? 'invalid'}`);
          }
          return serialize(payload);
        };
      },
    });
  };

  /** Runs `fn` with the current model version leased for the request's whole life. */
  async function withModel<T>(fn: (version: ModelVersion) => Promise<T> | T): Promise<T> {
    const lease = models.lease();
    if (!lease) throw new RequestError(503, 'no_model', 'no model is loaded yet (see /readyz)');
    try {
      return await fn(lease.version);
    } finally {
      lease.release();
    }
  }

  /**
   * The popular items the model knows. Nothing is left out for excludeSeen: the fallback's user has
   * no item the catalog knows, so none of theirs can be among these.
   */
  const popularFor = (version: ModelVersion, k: number): ScoredItem[] => {
    const out: ScoredItem[] = [];
    for (const p of popular.top()) {
      if (out.length >= k) break;
      if (version.knows(p.itemId)) out.push({ itemId: p.itemId, score: p.count });
    }
    return out;
  };

  v1('GET', '/v1/users/:userId/recommendations', schemas.Recommendations, async (request) => {
    const { userId } = parse(schemas.UserParams, request.params, 'path');
    const query = parse(schemas.UserQuery, request.query, 'query');
    const k = query.k ?? config.defaultK;
    const excludeSeen = query.excludeSeen ?? true;
    return withModel(async (version) => {
      const history = histories.get(userId)?.itemIds ?? [];
      const known = version.denseHistory(history); // the one catalog lookup per item of the request
      const base = { requestId: request.id, model: version.describe(), userId };
      if (known.length === 0) {
        metrics.fallbacks.inc();
        return { ...base, historyLength: 0, fallback: 'popular' as const, items: popularFor(version, k) };
      }
      // Seen items the catalog does not know cannot be recommended: the known ones are all there is to leave out.
      const [items] = await version.recommendDense([known], k, [excludeSeen ? known : []]);
      return { ...base, historyLength: Math.min(known.length, version.servable.maxHistoryLength), items: items ?? [] };
    });
  });

  v1('POST', '/v1/recommendations', schemas.Recommendations, async (request) => {
    parse(schemas.NoQuery, request.query, 'query');
    const body = parse(schemas.StatelessBody, request.body, 'body');
    const k = body.k ?? config.defaultK;
    return withModel(async (version) => {
      const dense = body.history.map((id) => version.denseId(id) ?? 0);
      const unknown = dense.indexOf(0);
      if (unknown >= 0) {
        throw new RequestError(400, 'unknown_item', `body.history.${unknown}: item ${JSON.stringify(body.history[unknown])} is not in the model's catalog`, `body.history.${unknown}`);
      }
      const [items] = await version.recommendDense([dense], k, [body.excludeSeen === false ? [] : dense]);
      return { requestId: request.id, model: version.describe(), historyLength: Math.min(body.history.length, version.servable.maxHistoryLength), items: items ?? [] };
    });
  });

  v1('GET', '/v1/items/:itemId/similar', schemas.Similar, async (request) => {
    const { itemId } = parse(schemas.ItemParams, request.params, 'path');
    const query = parse(schemas.SimilarQuery, request.query, 'query');
    return withModel((version) => {
      if (!version.knows(itemId)) throw new RequestError(404, 'unknown_item', `item ${JSON.stringify(itemId)} is not in the model's catalog`, 'path.itemId');
      return { requestId: request.id, model: version.describe(), itemId, items: version.similar(itemId, query.k ?? config.defaultK) };
    });
  });

  v1('POST', '/v1/search', schemas.Search, async (request) => {
    parse(schemas.NoQuery, request.query, 'query');
    const body = parse(schemas.SearchBody, request.body, 'body');
    return withModel(async (version) => {
      const search = version.search;
      if ('unavailable' in search) throw new RequestError(409, 'search_unavailable', `search is not available: ${search.unavailable}`);
      return { requestId: request.id, model: version.describe(), query: body.query, items: await search.search(body.query, body.k ?? config.defaultK) };
    });
  });

  const document = openApiDocument(schemas, STREAMREC_VERSION);
  app.get('/openapi.json', async () => document);

  app.get('/healthz', async () => ({ status: 'ok', pid: process.pid, ...(options.cluster ? { worker: options.cluster.worker } : {}) }));
  app.get('/readyz', async (request, reply) => {
    const stats = histories.stats();
    const reasons: string[] = [];
    if (!models.current) reasons.push('no model loaded');
    if (!stats.caughtUp) reasons.push('histories are catching up with the changelog');
    if (config.readyMaxStalenessMs > 0 && stats.newestChangeAgeMs !== undefined && stats.newestChangeAgeMs > config.readyMaxStalenessMs) {
      reasons.push(`the newest history change is ${Math.round(stats.newestChangeAgeMs / 1000)} s old`);
    }
    return reply.code(reasons.length === 0 ? 200 : 503).send({ ready: reasons.length === 0, reasons, model: models.current?.describe() ?? null, histories: stats, requestId: request.id });
  });
  metrics.sampleWith(() => {
    const stats = histories.stats();
    return {
      modelVersion: models.current?.published.version ?? 0,
      items: models.current?.servable.items.itemCount ?? 0,
      swaps: models.swaps,
      failedSwaps: models.failedSwaps,
      failedCatalogReloads: models.failedCatalogReloads,
      historyUsers: stats.users,
      historyStalenessSeconds: stats.newestChangeAgeMs === undefined ? undefined : stats.newestChangeAgeMs / 1000,
    };
  });
  app.get('/metrics', async (_, reply) => {
    // In a cluster: every worker's, collected by the primary.
    const text = options.cluster ? await options.cluster.metrics() : await metrics.registry.metrics();
    return reply.type(metrics.registry.contentType).send(text);
  });

  // The report page (streamrec report): a file, read again when it changes. It inlines its
  // scripts and data; the policy lets it run them and reach nothing else.
  let report: { mtimeMs: number; size: number; html: Buffer } | undefined;
  app.get('/report', async (request, reply) => {
    if (config.reportFile === '') return fail(reply, request, 404, 'no_report', 'no report configured (serving.reportFile; write one with streamrec report --out <file>)');
    let stat: { mtimeMs: number; size: number };
    try {
      stat = await fs.stat(config.reportFile);
    } catch {
      return fail(reply, request, 404, 'no_report', `no report written yet at ${config.reportFile} (streamrec report --out ${config.reportFile})`);
    }
    if (!report || report.mtimeMs !== stat.mtimeMs || report.size !== stat.size) report = { mtimeMs: stat.mtimeMs, size: stat.size, html: await fs.readFile(config.reportFile) };
    return reply
      .type('text/html; charset=utf-8')
      .header('cache-control', 'no-cache')
      .header('x-content-type-options', 'nosniff')
      .header('content-security-policy', "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:")
      .send(report.html);
  });

  app.post('/admin/reload', async (request, reply) => {
    // With no key configured the admin endpoints do not exist (disabled, not open).
    if (config.adminApiKey === '') return fail(reply, request, 404, 'not_found', `no route POST ${request.url.split('?')[0]}`);
    const given = request.headers['x-api-key'];
    if (typeof given !== 'string' || !sameKey(given, config.adminApiKey)) return fail(reply, request, 401, 'unauthorized', 'missing or wrong x-api-key', 'header.x-api-key');
    if (!options.registry) return fail(reply, request, 409, 'no_registry', 'this server follows no model registry');
    if (options.cluster) {
      // Every worker checks the registry; this one's outcome first, as without a cluster.
      const workers = await options.cluster.reloadAll();
      const own = workers.find((w) => w.worker === options.cluster?.worker);
      return { requestId: request.id, outcome: own?.outcome ?? null, model: models.current?.describe() ?? null, workers };
    }
    const outcome = await models.syncWith(options.registry, { retry: true });
    return { requestId: request.id, outcome, model: models.current?.describe() ?? null };
  });

  return app;
}
