export { ClickHouse, openClickHouse, refusesRowContent, type ClickHouseKind, type ClickHouseTransport, type OpenClickHouseOptions } from './client';
export { serveClickHouseRelay, useClickHouseRelay } from './relay';
export { runMigrations, type Migration } from './migrations';
export { MIGRATIONS } from './migrations/index';
export { IngestArchive, deadLetterRow, DEAD_LETTER_PAYLOAD_LIMIT, type InteractionRow, type ItemRow } from './archive';
export { BufferedWriter, type BufferedWriterOptions, type RowSink } from './bufferedWriter';
export { refusalReason, writeIsolating, type RefusedRow } from './isolate';
