import { promises as fs } from 'node:fs';
import path from 'node:path';
import { ArtifactError } from '../../errors';
import type { Matrix } from '../../infra/matrix';
import type { AnnIndex } from './annIndex';
import { parseAnnConfig, type AnnConfig, type AnnConfigInput } from './config';
import { ExactIndex } from './exact';
import { HnswIndex } from './hnsw';
import { ANN_MANIFEST } from './manifest';

/**
 * Builds serving's candidate index over `vectors` `[N, D]` (row r is item r + 1): exact search when
 * `config.index` is `exact`, or `auto` with N below `config.exactBelow`; HNSW otherwise, with
 * `config.hnsw`. `config` is parsed with {@link AnnConfig} (missing keys take their defaults; an
 * unknown key or a bad value is a ConfigError).
 *
 * @example
 * const index = await createAnnIndex(itemVectors, { exactBelow: 20_000, hnsw: { ef: 128 } });
 * const [hits] = index.search(userVector, 10, { exclude: [historyIds] });
 */
export async function createAnnIndex(vectors: Matrix, config: AnnConfigInput | AnnConfig = {}): Promise<AnnIndex> {
  const settings = parseAnnConfig(config);
  return chooseKind(vectors.rows, settings) === 'exact' ? ExactIndex.build(vectors) : HnswIndex.build(vectors, settings.hnsw);
}

/** The kind {@link createAnnIndex} builds for a catalog of `items` items under `config`. */
export function chooseKind(items: number, config: AnnConfig): 'exact' | 'hnsw' {
  if (config.index !== 'auto') return config.index;
  return items < config.exactBelow ? 'exact' : 'hnsw';
}

/** Reopens an index saved with `save(dir)`, of whichever kind its manifest names. */
export async function loadAnnIndex(dir: string): Promise<AnnIndex> {
  const file = path.join(path.resolve(dir), ANN_MANIFEST);
  let kind: unknown;
  try {
    kind = (JSON.parse(await fs.readFile(file, 'utf8')) as { kind?: unknown }).kind;
  } catch {
    kind = undefined; // the loader below reports the missing or unreadable manifest precisely
  }
  if (kind === 'hnsw') return HnswIndex.load(dir);
  if (kind === 'exact') return ExactIndex.load(dir);
  if (kind === undefined) return ExactIndex.load(dir);
  throw new ArtifactError(`ANN index manifest ${file} names kind ${JSON.stringify(kind)}, expected exact or hnsw`, {
    context: { path: file },
  });
}
