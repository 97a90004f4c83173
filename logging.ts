import pino, { type Logger } from 'pino';

export type { Logger } from 'pino';

/**
 * One root logger, one named child per module (`createLogger('ingest.kafka')`).
 *
 * Logs go to stderr as JSON lines so that stdout stays free for command output (tables, the
 * benchmark JSON line). The level comes from `STREAMREC_LOG_LEVEL` (default `info`; `silent`
 * under jest unless set).
 */
function defaultLevel(): string {
  const fromEnv = process.env.STREAMREC_LOG_LEVEL;
  if (fromEnv) return fromEnv;
  return process.env.JEST_WORKER_ID !== undefined ? 'silent' : 'info';
}

let root: Logger | undefined;

function rootLogger(): Logger {
  root ??= pino({ level: defaultLevel(), base: { pid: process.pid } }, pino.destination({ fd: 2, sync: false }));
  return root;
}

export function createLogger(name: string): Logger {
  return rootLogger().child({ module: name });
}

/** Changes the level of every logger (the CLI's `--log-level`). */
export function setLogLevel(level: string): void {
  rootLogger().level = level;
}
