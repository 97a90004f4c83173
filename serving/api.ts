import { z } from 'zod';
import type { ServingConfig } from '../schemas/serving';

/**
 * The HTTP API's requests and responses as zod schemas: handlers parse every request with them
 * (unknown fields and query parameters are errors) and `/openapi.json` is generated from them.
 */

/** A user or item id: 1..maxIdLength printable characters. */
function idSchema(config: ServingConfig, what: string) {
  return z
    .string()
    .min(1, `${what} must not be empty`)
    .max(config.maxIdLength, `${what} is longer than ${config.maxIdLength} characters`)
    .regex(/^[^\u0000-\u001f\u007f]+$/, `${what} holds control characters`)
    .describe(what);
}

/** `k`: how many items, 1..maxK; from a query string it arrives as text. */
function kSchema(config: ServingConfig, fromQuery: boolean) {
  const int = z.number().int('k must be an integer').min(1, 'k must be at least 1').max(config.maxK, `k must be at most ${config.maxK}`);
  const k = fromQuery
    ? z
        .string()
        .regex(/^\d{1,9}$/, 'k must be a whole number')
        .transform(Number)
        .pipe(int)
    : int;
  return k.optional().describe(`How many items (1..${config.maxK}; default ${config.defaultK}).`);
}

const booleanFlag = z
  .enum(['true', 'false'], { error: 'expected true or false' })
  .transform((v) => v === 'true')
  .optional();

export function apiSchemas(config: ServingConfig) {
  const itemId = idSchema(config, 'itemId');
  const ScoredItem = z.strictObject({
    itemId: z.string(),
    score: z
      .number()
      .describe("What the items are ranked by: the model's cosine plus the tuned text prior; in the popular fallback, the item's interactions in the recent window."),
  });
  const Model = z
    .strictObject({
      version: z.number().int().describe('The published version (model registry).'),
      checkpointId: z.string(),
      modelType: z.string(),
      semanticIds: z.string().nullable().describe('Semantic-ID artifact of the catalog scored.'),
      embeddings: z.string().nullable().describe('Text-embedding artifact of the catalog scored.'),
      items: z.number().int().describe('Items the model scores.'),
      engine: z.string().describe('What computed the user vector: onnx or tfjs.'),
    })
    .describe('The model that answered.');
  return {
    UserParams: z.strictObject({ userId: idSchema(config, 'userId') }),
    UserQuery: z.strictObject({
      k: kSchema(config, true),
      excludeSeen: booleanFlag.describe('Leave out the items the user already has (default true).'),
    }),
    ItemParams: z.strictObject({ itemId }),
    SimilarQuery: z.strictObject({ k: kSchema(config, true) }),
    /** The POST routes take everything in the body: any query parameter is unknown. */
    NoQuery: z.strictObject({}),
    StatelessBody: z.strictObject({
      history: z
        .array(itemId)
        .min(1, 'history must hold at least one item id')
        .max(config.maxHistoryItems, `history holds more than ${config.maxHistoryItems} item ids`)
        .describe('Item ids, oldest first; every one must be in the catalog.'),
      k: kSchema(config, false),
      excludeSeen: z.boolean().optional().describe('Leave out the history items (default true).'),
    }),
    SearchBody: z.strictObject({
      query: z
        .string()
        .min(1, 'query must not be empty')
        .max(config.maxQueryLength, `query is longer than ${config.maxQueryLength} characters`)
        .describe('Free text, matched against the items\' texts through the catalog\'s own text encoder and PCA.'),
      k: kSchema(config, false),
    }),
    Search: z.strictObject({ requestId: z.string(), model: Model, query: z.string(), items: z.array(ScoredItem) }),
    Recommendations: z.strictObject({
      requestId: z.string(),
      model: Model,
      userId: z.string().optional(),
      historyLength: z.number().int().describe('History items the ranking used (0 for the popular fallback).'),
      fallback: z.enum(['popular']).optional().describe('Set when the user has no usable history: the popular items of a recent window.'),
      items: z.array(ScoredItem),
    }),
    Similar: z.strictObject({ requestId: z.string(), model: Model, itemId: z.string(), items: z.array(ScoredItem) }),
    Error: z.strictObject({
      requestId: z.string(),
      error: z.strictObject({ code: z.string(), message: z.string(), field: z.string().optional() }),
    }),
  };
}
export type ApiSchemas = ReturnType<typeof apiSchemas>;

/**
 * A schema as JSON Schema (2020-12, without `$schema`): what a request must be (`input`) or what a
 * response is (`output`). The OpenAPI document shows these; the server serializes its responses
 * with the `output` ones (fast-json-stringify: only the schema's fields are written).
 */
export function jsonSchemaOf(schema: z.ZodType, io: 'input' | 'output'): Record<string, unknown> {
  const { $schema: _, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as Record<string, unknown>;
  return rest;
}

/** The OpenAPI 3.1 document of the API, generated from the schemas. */
export function openApiDocument(schemas: ApiSchemas, version: string): Record<string, unknown> {
  const json = jsonSchemaOf;
  const parameters = (schema: z.ZodObject, where: 'path' | 'query') => {
    const shape = json(schema, 'input') as { properties?: Record<string, unknown>; required?: string[] };
    return Object.entries(shape.properties ?? {}).map(([name, s]) => ({ name, in: where, required: where === 'path' || (shape.required ?? []).includes(name), schema: s }));
  };
  const responses = (ok: z.ZodType) => ({
    '200': { description: 'OK', content: { 'application/json': { schema: json(ok, 'output') } } },
    '4XX': { description: 'A bad request: the message names the field', content: { 'application/json': { schema: json(schemas.Error, 'output') } } },
    '503': { description: 'No model loaded yet', content: { 'application/json': { schema: json(schemas.Error, 'output') } } },
  });
  return {
    openapi: '3.1.0',
    info: { title: 'streamrec serving', version },
    paths: {
      '/v1/users/{userId}/recommendations': {
        get: { summary: "Items for a user's live rolling history", parameters: [...parameters(schemas.UserParams, 'path'), ...parameters(schemas.UserQuery, 'query')], responses: responses(schemas.Recommendations) },
      },
      '/v1/recommendations': {
        post: {
          summary: 'Items for a history given in the request (stateless)',
          requestBody: { required: true, content: { 'application/json': { schema: json(schemas.StatelessBody, 'input') } } },
          responses: responses(schemas.Recommendations),
        },
      },
      '/v1/items/{itemId}/similar': {
        get: { summary: "Nearest items in the model's item space", parameters: [...parameters(schemas.ItemParams, 'path'), ...parameters(schemas.SimilarQuery, 'query')], responses: responses(schemas.Similar) },
      },
      '/v1/search': {
        post: {
          summary: 'Items whose text matches a free-text query (the rebuild\'s encoder, cleaning and PCA)',
          requestBody: { required: true, content: { 'application/json': { schema: json(schemas.SearchBody, 'input') } } },
          responses: { ...responses(schemas.Search), '409': { description: 'The model has no text side to search', content: { 'application/json': { schema: json(schemas.Error, 'output') } } } },
        },
      },
      '/healthz': { get: { summary: 'The process is up', responses: { '200': { description: 'OK' } } } },
      '/readyz': { get: { summary: 'A model is loaded and the histories are caught up', responses: { '200': { description: 'Ready' }, '503': { description: 'Not ready, with the reasons' } } } },
      '/metrics': { get: { summary: 'Prometheus metrics', responses: { '200': { description: 'Text exposition format' } } } },
      '/admin/reload': {
        post: {
          summary: 'Check the model registry for a new live version now (header x-api-key); in a serving cluster every worker checks, and each one\'s outcome is listed',
          responses: { '200': { description: 'The outcome' }, '401': { description: 'Wrong or missing key' }, '404': { description: 'Admin endpoints disabled (no key configured)' } },
        },
      },
    },
  };
}
