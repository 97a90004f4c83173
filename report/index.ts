import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { openClickHouse, type ClickHouse } from '../infra/clickhouse';
import type { ClickHouseConfig } from '../schemas/config';
import { STREAMREC_VERSION } from '../version';
import { readReportData, type ReportData } from './data';
import { renderReport } from './render';

export { readReportData, type ReportData } from './data';
export { renderReport, scriptSafeJson, SECTIONS } from './render';

export interface BuildReportOptions {
  /** Limit the training and live-loop sections to these runs. */
  readonly runs?: readonly string[];
}

/** The report of what `ch` holds, as one self-contained HTML page. */
export async function buildReport(ch: ClickHouse, options: BuildReportOptions = {}): Promise<{ html: string; data: ReportData }> {
  const data = await readReportData(ch, { version: STREAMREC_VERSION, ...(options.runs ? { runs: options.runs } : {}) });
  return { html: renderReport(data), data };
}

export interface WriteReportOptions extends BuildReportOptions {
  readonly out: string;
}

/**
 * Opens ClickHouse (`config`), builds the report and writes it to `out` (through a temporary file
 * and a rename, so a reader never sees half a page). Returns the absolute path and the data drawn.
 */
export async function writeReport(config: ClickHouseConfig, options: WriteReportOptions): Promise<{ file: string; data: ReportData; bytes: number }> {
  const ch = await openClickHouse(config);
  try {
    const { html, data } = await buildReport(ch, options);
    const file = path.resolve(options.out);
    mkdirSync(path.dirname(file), { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, html);
    renameSync(tmp, file);
    return { file, data, bytes: Buffer.byteLength(html) };
  } finally {
    await ch.close();
  }
}
