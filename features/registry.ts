import { promises as fs } from 'node:fs';
import { ArtifactError, ValidationError, describeValue } from '../errors';
import { sha256, writeFileAtomic } from '../infra/artifacts';

/**
 * The item registry: external item id (an ASIN, a SKU) -> dense integer id 1..N, with 0 kept for
 * padding. Append-only: an id, once given, never changes, so embeddings, semantic ids and model
 * rows stay aligned when the catalog grows or a job reruns.
 *
 * Persisted as one JSON file, written atomically:
 * `{"format": "streamrec.item_registry", "version": 1, "count": N, "sha256": "...", "ids": [...]}`
 * where `ids[i]` has dense id `i + 1` and `sha256` is the hash of the ids joined by `\n`.
 */

const FORMAT = 'streamrec.item_registry';

function idsHash(ids: readonly string[]): string {
  return sha256(ids.join('\n'));
}

export class ItemRegistry {
  private readonly ids: string[] = [];
  private readonly index = new Map<string, number>();
  /** How many ids the file held when last read or written (to detect other writers). */
  private persisted = 0;

  private constructor(readonly file: string | undefined) {}

  /** An in-memory registry (not persisted), optionally seeded with ids in dense-id order. */
  static inMemory(externalIds: Iterable<string> = []): ItemRegistry {
    const registry = new ItemRegistry(undefined);
    registry.assign(externalIds);
    return registry;
  }

  /**
   * Opens the registry persisted at `file`; a missing file is an empty registry. A file that is
   * not a valid registry (truncated, edited, wrong count or hash, duplicate ids) is an
   * ArtifactError: the registry is never silently rebuilt, since that would renumber items.
   */
  static async open(file: string): Promise<ItemRegistry> {
    const registry = new ItemRegistry(file);
    const ids = await readRegistryFile(file);
    if (ids) {
      registry.assign(ids);
      if (registry.size !== ids.length) {
        throw new ArtifactError(`item registry ${file} lists ${ids.length - registry.size} id(s) twice (corrupt)`, {
          context: { path: file },
        });
      }
      registry.persisted = ids.length;
    }
    return registry;
  }

  /** Number of items N; dense ids are 1..N. */
  get size(): number {
    return this.ids.length;
  }

  /** Dense id of `externalId`, or undefined when it was never assigned. */
  idOf(externalId: string): number | undefined {
    return this.index.get(externalId);
  }

  /** External id of dense id `denseId` (1..N). */
  externalIdOf(denseId: number): string {
    const id = Number.isInteger(denseId) && denseId >= 1 ? this.ids[denseId - 1] : undefined;
    if (id === undefined) {
      throw new ValidationError(`dense item id must be an integer in [1, ${this.size}], got ${describeValue(denseId)}`);
    }
    return id;
  }

  /** Dense ids of `externalIds` in order, giving new ids (N+1, N+2, ...) to unseen ones. */
  assign(externalIds: Iterable<string>): number[] {
    const out: number[] = [];
    for (const externalId of externalIds) {
      if (typeof externalId !== 'string' || externalId.length === 0) {
        throw new ValidationError(`external item id must be a non-empty string, got ${describeValue(externalId)}`);
      }
      let id = this.index.get(externalId);
      if (id === undefined) {
        this.ids.push(externalId);
        id = this.ids.length;
        this.index.set(externalId, id);
      }
      out.push(id);
    }
    return out;
  }

  /** All external ids in dense-id order: element i has dense id i + 1. */
  externalIds(): readonly string[] {
    return this.ids;
  }

  /** Content hash of the mapping (sha256 of the ids in order joined by newlines). */
  hash(): string {
    return idsHash(this.ids);
  }

  /**
   * Writes the registry to its file atomically. Fails with an ArtifactError when the file on disk
   * is no longer a prefix of this registry (another process appended different ids), rather
   * than overwriting its assignments.
   */
  async save(): Promise<void> {
    if (this.file === undefined) throw new ArtifactError('this item registry is in memory only; open one from a file to save it');
    const onDisk = await readRegistryFile(this.file);
    if (onDisk) {
      const diverged = onDisk.length > this.ids.length || onDisk.some((id, i) => this.ids[i] !== id);
      if (diverged || onDisk.length !== this.persisted) {
        throw new ArtifactError(
          `item registry ${this.file} was changed by another writer (${onDisk.length} ids on disk, ` +
            `${this.persisted} when opened); reopen it and assign again`,
          { context: { path: this.file } },
        );
      }
    }
    const body = { format: FORMAT, version: 1, count: this.ids.length, sha256: this.hash(), ids: this.ids };
    await writeFileAtomic(this.file, `${JSON.stringify(body)}\n`);
    this.persisted = this.ids.length;
  }
}

async function readRegistryFile(file: string): Promise<string[] | undefined> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new ArtifactError(`cannot read item registry ${file}`, { cause, context: { path: file } });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (cause) {
    throw new ArtifactError(`item registry ${file} is not valid JSON (truncated or corrupt)`, { cause, context: { path: file } });
  }
  const body = raw as { format?: unknown; version?: unknown; count?: unknown; sha256?: unknown; ids?: unknown };
  if (typeof raw !== 'object' || raw === null || body.format !== FORMAT || body.version !== 1) {
    throw new ArtifactError(
      `item registry ${file}: expected {format: "${FORMAT}", version: 1, ...}, got ${describeValue(raw)}`,
      { context: { path: file } },
    );
  }
  const ids = body.ids;
  if (!Array.isArray(ids) || !ids.every((id) => typeof id === 'string' && id.length > 0)) {
    throw new ArtifactError(`item registry ${file}: "ids" must be an array of non-empty strings`, { context: { path: file } });
  }
  if (body.count !== ids.length || body.sha256 !== idsHash(ids as string[])) {
    throw new ArtifactError(
      `item registry ${file}: header says ${describeValue(body.count)} ids with sha256 ${String(body.sha256).slice(0, 12)}..., ` +
        `the file holds ${ids.length} ids with sha256 ${idsHash(ids as string[]).slice(0, 12)}... (corrupt or edited)`,
      { context: { path: file } },
    );
  }
  return ids as string[];
}
