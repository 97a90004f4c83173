import { createHash, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { ServableModel } from '../jobs';
import { hasOwnMemory } from '../infra/npy';
import { createLogger } from '../logging';
import { ITEM_TABLE_CHUNK, hostItemTable } from '../trainer/models/contract';
import { pruneLeastRecentlyUsed } from './ann/cache';

const log = createLogger('serving.item-table-cache');

/**
 * Host item tables (`[N + 1, H]` float32, {@link hostItemTable}) kept on disk under `dir`, keyed
 * by what determines them: the checkpoint, the catalog it is loaded with (its semantic-ID, text
 * and PCA artifacts and item count), the width, the numeric backend and the product grid. The
 * table is computed with TF.js on the loading thread: a large catalog keeps a server's event loop
 * busy for seconds in slices of tens of ms. A trainer that prepares a publication
 * (`ModelVersion.prepare`, the live loop's trainer thread) computes it once and the servers that
 * swap to the publication read a file. An entry of the wrong size is removed and computed again;
 * writes are renamed into place; at most `keep` entries stay, the least recently used removed first.
 */
export class ItemTableCache {
  hits = 0;
  misses = 0;

  constructor(
    readonly dir: string,
    private readonly keep = 8,
  ) {}

  /** The servable model's host item table, from the cache when it holds it. */
  async getOrCompute(servable: ServableModel, backend: string): Promise<Float32Array> {
    const H = servable.model.hiddenSize;
    const rows = servable.model.itemCount + 1;
    const file = path.join(this.dir, `${tableKey(servable, backend)}.f32`);
    const cached = await fs.readFile(file).catch(() => undefined);
    if (cached) {
      if (cached.byteLength === rows * H * 4) {
        this.hits++;
        const now = new Date();
        await fs.utimes(file, now, now).catch(() => undefined); // most recently used
        // The ranker keeps the table for the version's lifetime: a view of the file's buffer when
        // the buffer is the file's alone (as fs.readFile gives a file this size), else a copy.
        return hasOwnMemory(cached) ? new Float32Array(cached.buffer, 0, rows * H) : new Float32Array(cached.buffer.slice(cached.byteOffset, cached.byteOffset + cached.byteLength));
      }
      log.warn({ file, bytes: cached.byteLength, expected: rows * H * 4 }, 'a cached item table has the wrong size: computing it again');
      await fs.rm(file, { force: true });
    }
    this.misses++;
    const table = await hostItemTable(servable.model);
    await this.store(file, table).catch((error: unknown) => log.warn({ err: error, file }, 'the item table could not be cached'));
    return table;
  }

  private async store(file: string, table: Float32Array): Promise<void> {
    await fs.mkdir(this.dir, { recursive: true });
    const staging = path.join(this.dir, `.staging-${path.basename(file)}-${randomBytes(4).toString('hex')}`);
    try {
      await fs.writeFile(staging, Buffer.from(table.buffer, table.byteOffset, table.byteLength));
      await fs.rename(staging, file);
    } finally {
      await fs.rm(staging, { force: true });
    }
    await pruneLeastRecentlyUsed(this.dir, this.keep, '.f32');
  }
}

function tableKey(servable: ServableModel, backend: string): string {
  const { lineage } = servable;
  const parts = [servable.checkpointId, lineage.semanticIds ?? '', lineage.embeddings ?? '', lineage.pca ?? '', servable.items.itemCount, servable.model.hiddenSize, backend, ITEM_TABLE_CHUNK];
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex').slice(0, 32);
}
