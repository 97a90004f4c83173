import { readFileSync } from 'node:fs';
import type { z } from 'zod';
import { ConfigError, describeValue } from '../errors';

/**
 * Loads a configuration from three sources. The order is fixed and tested:
 *
 *   defaults (in the schema) < config file (JSON) < environment < command-line overrides
 *
 * Environment variables name a key path with `__` between levels and SCREAMING_SNAKE_CASE for
 * each key, after the prefix `STREAMREC__`: `STREAMREC__INGEST__HISTORY__MAX_LENGTH=30` sets
 * `ingest.history.maxLength`. Values are parsed as JSON when they parse (numbers, booleans,
 * arrays), else taken as strings. Unknown keys from any source are errors.
 */

export const ENV_PREFIX = 'STREAMREC__';

type Plain = Record<string, unknown>;

export interface ConfigSources {
  /** Path of a JSON config file. */
  readonly file?: string;
  /** Environment to read `STREAMREC__*` variables from (default: none). */
  readonly env?: NodeJS.ProcessEnv;
  /** Values from the command line, already nested (`{ ingest: { groupId: 'x' } }`). */
  readonly overrides?: Plain;
}

function isPlain(value: unknown): value is Plain {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Deep merge of plain objects; arrays and scalars from `over` replace those in `base`. */
export function mergeConfig(base: Plain, over: Plain): Plain {
  const out: Plain = { ...base };
  for (const [key, value] of Object.entries(over)) {
    if (value === undefined) continue;
    const current = out[key];
    out[key] = isPlain(current) && isPlain(value) ? mergeConfig(current, value) : value;
  }
  return out;
}

function snakeToCamel(segment: string): string {
  return segment.toLowerCase().replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/** The nested object that the `STREAMREC__*` variables of `env` describe. */
export function configFromEnv(env: NodeJS.ProcessEnv): Plain {
  const out: Plain = {};
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith(ENV_PREFIX) || raw === undefined) continue;
    const path = name.slice(ENV_PREFIX.length).split('__').map(snakeToCamel);
    if (path.some((p) => p.length === 0)) {
      throw new ConfigError(`environment variable ${name}: empty key segment (use STREAMREC__SECTION__KEY_NAME)`);
    }
    let value: unknown = raw;
    try {
      value = JSON.parse(raw);
    } catch {
      // not JSON: keep the string
    }
    let node = out;
    path.slice(0, -1).forEach((key) => {
      const next = node[key];
      node[key] = isPlain(next) ? next : {};
      node = node[key] as Plain;
    });
    node[path[path.length - 1] as string] = value;
  }
  return out;
}

function readConfigFile(file: string): Plain {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    throw new ConfigError(`cannot read config file ${file}`, { cause, context: { path: file } });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (cause) {
    throw new ConfigError(`config file ${file} is not valid JSON: ${(cause as Error).message}`, { cause, context: { path: file } });
  }
  if (!isPlain(parsed)) {
    throw new ConfigError(`config file ${file} must hold a JSON object, got ${describeValue(parsed)}`, { context: { path: file } });
  }
  return parsed;
}

function valueAt(root: unknown, path: ReadonlyArray<PropertyKey>): unknown {
  let node = root;
  for (const key of path) {
    if (!isPlain(node) && !Array.isArray(node)) return undefined;
    node = (node as Record<PropertyKey, unknown>)[key];
  }
  return node;
}

/** Parses `raw` with `schema`, turning zod issues into one ConfigError that names every bad key. */
export function parseConfig<S extends z.ZodType>(schema: S, raw: unknown, where = 'config'): z.output<S> {
  const result = schema.safeParse(raw);
  if (result.success) return result.data;
  const lines = result.error.issues.map((issue) => {
    const key = issue.path.map(String).join('.') || '(root)';
    if (issue.code === 'unrecognized_keys') {
      const prefix = issue.path.length > 0 ? `${key}.` : '';
      return `unknown key(s) ${issue.keys.map((k) => `${prefix}${k}`).join(', ')}`;
    }
    return `${key}: ${issue.message} (got ${describeValue(valueAt(raw, issue.path))})`;
  });
  throw new ConfigError(`invalid ${where}:\n  - ${lines.join('\n  - ')}`, { context: { field: String(result.error.issues[0]?.path.join('.')) } });
}

/** Loads and validates a configuration from its sources, in the documented order. */
export function loadConfig<S extends z.ZodType>(schema: S, sources: ConfigSources = {}): z.output<S> {
  let merged: Plain = {};
  if (sources.file) merged = mergeConfig(merged, readConfigFile(sources.file));
  if (sources.env) merged = mergeConfig(merged, configFromEnv(sources.env));
  if (sources.overrides) merged = mergeConfig(merged, sources.overrides);
  return parseConfig(schema, merged, sources.file ? `config (file ${sources.file}, env, command line)` : 'config');
}
