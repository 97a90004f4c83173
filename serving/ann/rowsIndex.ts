import { ValidationError } from '../../errors';
import type { Matrix } from '../../infra/matrix';
import type { AnnSearchOptions } from './annIndex';
import { checkEf, checkExclusions, checkK, checkQueries, type VectorRows } from './rows';

/** What both index kinds share: the stored rows, their size and ids, the checks every search makes, disposal. */
export abstract class RowsIndex {
  protected disposed = false;

  protected constructor(protected readonly rows: VectorRows) {}

  get dims(): number {
    return this.rows.dims;
  }

  get size(): number {
    return this.rows.size;
  }

  has(id: number): boolean {
    return this.rows.has(id);
  }

  /** A search's inputs checked (`where` names the caller in errors): the query rows, their count and each one's exclusions. */
  protected checkedSearch(where: string, queries: Matrix | Float32Array, k: number, options: AnnSearchOptions | undefined) {
    this.checkLive(where);
    checkK(k, where);
    const { data, batch } = checkQueries(queries, this.dims, where);
    const exclude = checkExclusions(options, batch, where);
    checkEf(options?.ef, where);
    return { data, batch, exclude };
  }

  protected checkLive(where: string): void {
    if (this.disposed) throw new ValidationError(`${where}: the index has been disposed`);
  }
}
