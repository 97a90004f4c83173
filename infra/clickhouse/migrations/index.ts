import type { Migration } from '../migrations';
import { migration001 } from './001_ingest';
import { migration002 } from './002_training';
import { migration003 } from './003_text_prior';
import { migration004 } from './004_text_prior_pooling';
import { migration005 } from './005_micro_epochs';
import { migration006 } from './006_report_rows';
import { migration007 } from './007_live_rebuilds';
import { migration008 } from './008_micro_epoch_watermark';
import { migration009 } from './009_archive_marks';
import { migration010 } from './010_micro_epoch_gate_margin';

/** All migrations, in order. New ones are appended; applied ones never change. */
export const MIGRATIONS: readonly Migration[] = [migration001, migration002, migration003, migration004, migration005, migration006, migration007, migration008, migration009, migration010];
