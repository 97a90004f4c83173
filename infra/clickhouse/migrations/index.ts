import type { Migration } from '../migrations';
import { migration001 } from './001_ingest';

/** All migrations, in order. New ones are appended; applied ones never change. */
export const MIGRATIONS: readonly Migration[] = [migration001];
