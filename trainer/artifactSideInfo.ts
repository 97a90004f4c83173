import { stat } from 'node:fs/promises';
import path from 'node:path';
import { ArtifactError } from '../errors';
import type { ArtifactStore, LoadedArtifact } from '../infra/artifacts';
import { inSlices } from '../infra/slices';
import { WeakValues } from '../infra/weakValues';
import { readItemEmbeddings } from '../features';
import type { ArtifactManifest } from '../schemas/artifacts';
import { SemanticIdsArtifactSettings, loadSemanticIdTable } from '../quantizer';
import { openCheckpointArtifact } from './checkpoint';
import { itemIdMappingFromList, type ItemIdMapping, type ItemSideInfo, type TextFieldTable } from './sideInfo';
import type { ItemTextTables } from './textPrior';

export interface ArtifactSideInfo {
  readonly sideInfo: ItemSideInfo;
  /** External -> dense ids, as the rebuild that produced the artifacts assigned them. */
  readonly itemIds: ItemIdMapping;
}

async function pick(store: ArtifactStore, kind: 'embeddings' | 'semantic_ids', id: string | undefined): Promise<LoadedArtifact> {
  const artifact = id ? await store.open(id) : await store.latest(kind);
  if (!artifact) throw new ArtifactError(`no ${kind} artifact in ${store.root}: run \`streamrec rebuild\` first`);
  return artifact;
}

/** The semantic-ID version a version was grown from by coding new items (undefined for a full rebuild's). */
function previousOf(manifest: ArtifactManifest): string | undefined {
  return SemanticIdsArtifactSettings.parse(manifest.settings).previousId;
}

/** Most `previousId` links followed back from the store's latest semantic IDs before scanning every version. */
const MAX_CHAIN = 10_000;

/** Whether `version`'s chain of `previousId` reaches `from` (within {@link MAX_CHAIN} links). */
async function grownFrom(store: ArtifactStore, version: LoadedArtifact, from: string): Promise<boolean> {
  let cursor: LoadedArtifact | undefined = version;
  for (let i = 0; cursor && i < MAX_CHAIN; i++) {
    const previous = previousOf(cursor.manifest);
    if (previous === from) return true;
    cursor = previous ? await store.open(previous).catch(() => undefined) : undefined;
  }
  return false;
}

/**
 * The newest catalog grown from the semantic IDs `from` by coding new items with their codebooks
 * (`streamrec rebuild --new-items`, the live trainer): the newest semantic-ID version whose chain of
 * `previousId` reaches `from`, and the embeddings it was coded with; `from` and its own embeddings
 * when nothing grew it. A full rebuild in the same store (a manual `streamrec rebuild`, a rebuilt
 * candidate) starts another lineage, with other codebooks and another projection, and is never
 * chosen: its codes mean nothing to a model trained on `from`. The store's latest version is tried
 * first (walking back from it: short while the lineage is the latest), then every version.
 */
export async function latestGrownCatalog(store: ArtifactStore, from: string): Promise<{ readonly embeddings: string; readonly semanticIds: string }> {
  let chosen = await store.open(from);
  const latest = await store.latest('semantic_ids');
  if (latest && latest.id !== from) {
    if (await grownFrom(store, latest, from)) {
      chosen = latest;
    } else {
      // The latest version is another lineage's: the newest of this one, from every version in order.
      const grown = new Set([from]);
      let newest: string | undefined;
      for (const manifest of await store.list('semantic_ids')) {
        const previous = previousOf(manifest);
        if (previous !== undefined && grown.has(previous)) {
          grown.add(manifest.id);
          newest = manifest.id;
        }
      }
      if (newest) chosen = await store.open(newest);
    }
  }
  const embeddings = chosen.manifest.inputs.find((i) => i.role === 'embeddings')?.artifactId;
  if (!embeddings) throw new ArtifactError(`semantic IDs ${chosen.id} name no embeddings input: cannot pair them with the item text they were coded from`);
  return { embeddings, semanticIds: chosen.id };
}

/** How far a grown catalog has drifted from the codebooks of the rebuild it descends from ({@link catalogDrift}). */
export interface CatalogDrift {
  /** The full rebuild at the root of the lineage: when its codebooks were fitted, on how many items, and its metrics. */
  readonly rebuild: { readonly id: string; readonly builtAtMs: number; readonly items: number; readonly relMse?: number; readonly collisionRate: number };
  /** Items in the grown catalog, and how many of them were coded with the codebooks since (new items). */
  readonly items: number;
  readonly newItems: number;
  /** Relative reconstruction error of the new items (mean over the versions that coded them, weighted by their count); undefined without any with text. */
  readonly newItemsRelMse?: number;
  /** Collision rate of the grown catalog's codes (share of items whose codes another item has too). */
  readonly collisionRate: number;
}

interface SemanticIdMetrics {
  readonly items?: number;
  readonly relMse?: number;
  readonly collisionRate?: number;
  readonly newItems?: number;
  readonly newItemsRelMse?: number;
}

/**
 * The drift of the semantic IDs `semanticIds` (a live lineage's grown catalog) from the rebuild it
 * descends from, read from the metrics each version was written with: the chain of `previousId`
 * walked back to the full rebuild, summing the new items each version coded and their
 * reconstruction error. What the live trainer compares with `live.rebuild`'s thresholds.
 */
export async function catalogDrift(store: ArtifactStore, semanticIds: string): Promise<CatalogDrift> {
  const newest = await store.open(semanticIds);
  const metricsOf = (a: LoadedArtifact): SemanticIdMetrics => (a.manifest.metrics ?? {}) as SemanticIdMetrics;
  let cursor = newest;
  let newItems = 0;
  let errorSum = 0;
  let errorItems = 0;
  for (let i = 0; ; i++) {
    const previous = previousOf(cursor.manifest);
    if (previous === undefined) break;
    if (i >= MAX_CHAIN) throw new ArtifactError(`semantic IDs ${semanticIds}: more than ${MAX_CHAIN} grown versions before a full rebuild`);
    const m = metricsOf(cursor);
    newItems += m.newItems ?? 0;
    if (m.newItemsRelMse !== undefined && Number.isFinite(m.newItemsRelMse)) {
      errorSum += m.newItemsRelMse * (m.newItems ?? 0);
      errorItems += m.newItems ?? 0;
    }
    cursor = await store.open(previous);
  }
  const root = metricsOf(cursor);
  const now = metricsOf(newest);
  return {
    rebuild: {
      id: cursor.id,
      builtAtMs: Date.parse(cursor.manifest.createdAt),
      items: root.items ?? 0,
      ...(root.relMse !== undefined ? { relMse: root.relMse } : {}),
      collisionRate: root.collisionRate ?? 0,
    },
    items: now.items ?? root.items ?? 0,
    newItems,
    ...(errorItems > 0 ? { newItemsRelMse: errorSum / errorItems } : {}),
    collisionRate: now.collisionRate ?? 0,
  };
}

/** The external -> dense id mapping recorded in an embeddings artifact (its item_ids.json). */
export async function itemIdsOfArtifact(store: ArtifactStore, embeddingsId: string): Promise<ItemIdMapping> {
  return itemIdMappingFromList((await readItemEmbeddings(await store.open(embeddingsId))).itemIds);
}

/** The item text tables of an embeddings artifact (what the text prior reads), with its item ids. */
export interface ArtifactTextTables {
  readonly itemIds: ItemIdMapping;
  readonly text: ItemTextTables;
  readonly embeddingsId: string;
}

/** Floats copied between yields by {@link paddedTables} (4 MB: a fresh table's first touch costs page faults). */
const COPY_SLICE = 1 << 20;

/**
 * `[N + 1, K]` tables with a zero padding row, one per field, from item embeddings; copied a slice
 * at a time (at 100,000 items x 256 dims one copy held a serving event loop ~0.25 s).
 */
async function paddedTables(embeddings: Awaited<ReturnType<typeof readItemEmbeddings>>): Promise<TextFieldTable[]> {
  const n = embeddings.itemIds.length;
  const out: TextFieldTable[] = [];
  for (const [name, m] of embeddings.matrices) {
    const padded = new Float32Array((n + 1) * m.cols); // [N + 1, K], row 0 = padding
    await inSlices(m.data.length, COPY_SLICE, (from, to) => padded.set(m.data.subarray(from, to), m.cols + from));
    out.push({ name, dims: m.cols, table: padded });
  }
  return out;
}

/** The text tables of an embeddings artifact (a SASRec checkpoint's text prior reads only these). */
export async function loadArtifactTextTables(store: ArtifactStore, embeddingsId: string): Promise<ArtifactTextTables> {
  const embeddings = await readItemEmbeddings(await store.open(embeddingsId));
  return { itemIds: itemIdMappingFromList(embeddings.itemIds), text: { itemCount: embeddings.itemIds.length, textFields: await paddedTables(embeddings) }, embeddingsId };
}

/**
 * CCFRec's side information from a rebuild's artifacts: the whitened text embeddings (one
 * table per field, `[N + 1, K]` with a zero padding row) and the semantic IDs (the quantizer
 * levels, without the disambiguation digit). Both must describe the same N items; defaults are
 * the latest versions in the store. Loads of the same files while a copy is held share it
 * ({@link loadedSideInfo}): treat it as read-only.
 */
export async function loadArtifactSideInfo(
  store: ArtifactStore,
  ids: { readonly embeddings?: string; readonly semanticIds?: string } = {},
): Promise<ArtifactSideInfo> {
  const embeddingsArtifact = await pick(store, 'embeddings', ids.embeddings);
  const semanticArtifact = await pick(store, 'semantic_ids', ids.semanticIds);
  const key = await filesKey([embeddingsArtifact, semanticArtifact]);
  const sideInfo = key === undefined ? undefined : loadedSideInfo.get(key);
  const itemIds = key === undefined ? undefined : loadedItemIds.get(key);
  if (sideInfo && itemIds) return { sideInfo, itemIds };
  const loaded = await readArtifactSideInfo(embeddingsArtifact, semanticArtifact);
  if (key !== undefined) {
    loadedSideInfo.set(key, loaded.sideInfo);
    loadedItemIds.set(key, loaded.itemIds);
  }
  return loaded;
}

/**
 * Side information read from the store while something still holds it, by the files it was read
 * from: every checkpoint of one catalog (a server swapping between micro-epochs' versions, each
 * loading its checkpoint's inputs) shares one copy instead of reading, hashing, copying and
 * validating the text tables again (at 100,000 items x 256 dims, 100 MB: ~0.4 s of a 0.65 s load,
 * several times that beside live traffic). The parts are held weakly, each on its own (a model
 * keeps them, not the object around them). Side information is never written after it is read.
 */
const loadedSideInfo = new WeakValues<ItemSideInfo>();
const loadedItemIds = new WeakValues<ItemIdMapping>();

/**
 * The artifacts' directories and every file's inode, size and change times: a file rewritten,
 * truncated or replaced since it was read and checked gives another key (and is read and checked
 * again). Undefined when a file cannot be stat'ed (the full read reports it).
 */
async function filesKey(artifacts: readonly LoadedArtifact[]): Promise<string | undefined> {
  try {
    const parts = await Promise.all(
      artifacts.flatMap((a) =>
        a.manifest.files.map(async (f) => {
          const s = await stat(path.join(a.dir, f.name), { bigint: true });
          return `${a.dir}/${f.name}:${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
        }),
      ),
    );
    return parts.join('|');
  } catch {
    return undefined;
  }
}

async function readArtifactSideInfo(embeddingsArtifact: LoadedArtifact, semanticArtifact: LoadedArtifact): Promise<ArtifactSideInfo> {
  const embeddings = await readItemEmbeddings(embeddingsArtifact);
  const { table } = await loadSemanticIdTable(semanticArtifact);
  const n = embeddings.itemIds.length;
  const pca = embeddingsArtifact.manifest.inputs.find((i) => i.role === 'pca')?.artifactId;
  if (table.items !== n) {
    throw new ArtifactError(
      `semantic IDs ${semanticArtifact.id} cover ${table.items} items but embeddings ${embeddingsArtifact.id} have ${n}: ` +
        'rebuild both from the same catalog (or code the new items with the existing codebooks)',
    );
  }
  const textFields = await paddedTables(embeddings);
  const codes = new Int32Array((n + 1) * table.levels); // [N + 1, levels]
  for (let r = 0; r <= n; r++) {
    for (let l = 0; l < table.levels; l++) codes[r * table.levels + l] = table.codes[r * table.digits + l] as number;
  }
  return {
    itemIds: itemIdMappingFromList(embeddings.itemIds),
    sideInfo: {
      itemCount: n,
      textFields,
      codes: { levels: table.levels, codesPerLevel: table.codesPerLevel, table: codes },
      artifactIds: {
        // The embeddings artifact lists the external id of every dense id (item_ids.json).
        itemRegistry: embeddingsArtifact.id,
        textEmbeddings: Object.fromEntries(textFields.map((f) => [f.name, embeddingsArtifact.id])),
        semanticIds: semanticArtifact.id,
        // The projection the text vectors went through (new items are projected with the same one).
        ...(pca ? { pca } : {}),
      },
    },
  };
}

/** What a checkpoint was trained with, read from its manifest's inputs. */
export interface CheckpointInputs {
  readonly artifact: LoadedArtifact;
  /** CCFRec: the side information (its semantic IDs and text embeddings); SASRec: none. */
  readonly sideInfo?: ItemSideInfo;
  /** The id mapping of its item registry; undefined when the checkpoint names none. */
  readonly itemIds?: ItemIdMapping;
  /** The item text tables it names (CCFRec's, or a SASRec model's tuned text prior's); undefined when none. */
  readonly text?: ItemTextTables;
}

/**
 * Opens a checkpoint (artifact id in `store`, or a directory) and loads the side information
 * and item ids its manifest names as inputs, from `store`.
 */
export async function checkpointInputs(store: ArtifactStore, idOrDir: string): Promise<CheckpointInputs> {
  const artifact = await openCheckpointArtifact(store, idOrDir);
  const input = (role: string): string | undefined => artifact.manifest.inputs.find((i) => i.role === role)?.artifactId;
  const semanticIds = input('semantic_ids');
  const embeddings = artifact.manifest.inputs.find((i) => i.role.startsWith('embeddings:'))?.artifactId;
  if (semanticIds && embeddings) {
    const loaded = await loadArtifactSideInfo(store, { semanticIds, embeddings });
    return { artifact, ...loaded, text: loaded.sideInfo };
  }
  if (embeddings) {
    const { itemIds, text } = await loadArtifactTextTables(store, embeddings);
    return { artifact, itemIds, text };
  }
  const registry = input('item_registry');
  return { artifact, ...(registry ? { itemIds: await itemIdsOfArtifact(store, registry) } : {}) };
}
