import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic, type ArtifactStore } from '../infra/artifacts';
import { pruneLeastRecentlyUsed } from './ann/cache';

/**
 * Markers of {@link ModelVersion.prepare} runs that finished: a checkpoint prepared for serving
 * with a catalog (its semantic-ID version). A marker is written only after everything a load makes
 * is stored (the ONNX encoder in the artifact store, the item table and the indexes in their
 * caches), so a server that waits for one before loading a grown catalog finds all of it and does
 * none of that work on its event loop. One small JSON file per pair in `<store root>/serving-prepared`.
 */
const DIR = 'serving-prepared';
/** Markers kept; older ones (of versions long replaced) are removed when one is written. */
const KEEP = 256;

function markerFile(store: ArtifactStore, checkpointId: string, semanticIds: string): string {
  const key = createHash('sha256').update(JSON.stringify([checkpointId, semanticIds])).digest('hex').slice(0, 32);
  return path.join(store.root, DIR, `${key}.json`);
}

/** Records that `checkpointId` with the catalog of `semanticIds` is prepared (written atomically). */
export async function markPrepared(store: ArtifactStore, checkpointId: string, semanticIds: string, timings: Readonly<Record<string, number>>, keep = KEEP): Promise<void> {
  const file = markerFile(store, checkpointId, semanticIds);
  await writeFileAtomic(file, JSON.stringify({ checkpointId, semanticIds, preparedAt: new Date().toISOString(), timings }));
  await pruneLeastRecentlyUsed(path.dirname(file), keep, '.json');
}

/** Whether a prepare of `checkpointId` with the catalog of `semanticIds` has finished. */
export async function isPrepared(store: ArtifactStore, checkpointId: string, semanticIds: string): Promise<boolean> {
  return fs.access(markerFile(store, checkpointId, semanticIds)).then(
    () => true,
    () => false,
  );
}
