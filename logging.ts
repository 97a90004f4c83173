import pino, { type DestinationStream, type Logger } from 'pino';

export type { Logger } from 'pino';

/**
 * One root logger, one named child per module (`createLogger('ingest.kafka')`).
 *
 * Logs go to stderr as JSON lines so that stdout stays free for command output (tables, the
 * benchmark JSON line); {@link logToFile} sends them to a file instead (the demo keeps its
 * terminal for a person). The level comes from `STREAMREC_LOG_LEVEL` (default `info`; `silent`
 * under jest unless set).
 */
function defaultLevel(): string {
  const fromEnv = process.env.STREAMREC_LOG_LEVEL;
  if (fromEnv) return fromEnv;
  return process.env.JEST_WORKER_ID !== undefined ? 'silent' : 'info';
}

type Destination = DestinationStream & { end?: () => void };

let root: Logger | undefined;
let destination: Destination | undefined;

function rootLogger(): Logger {
  if (!root) {
    destination = pino.destination({ fd: 2, sync: false }) as Destination;
    // Loggers are made at module load; writing through a forwarder lets the destination change later.
    root = pino({ level: defaultLevel(), base: { pid: process.pid } }, { write: (line: string) => destination?.write(line) });
  }
  return root;
}

export function createLogger(name: string): Logger {
  return rootLogger().child({ module: name });
}

/** Changes the level of every logger (the CLI's `--log-level`). */
export function setLogLevel(level: string): void {
  rootLogger().level = level;
}

/**
 * Sends every logger's lines to `file` (created with its directory, appended to) instead of
 * stderr. Returns a function that flushes the file and sends logs back to stderr.
 */
export function logToFile(file: string): () => void {
  rootLogger();
  const previous = destination;
  // Synchronous: nothing is lost when the process exits, and a file write is cheap.
  const target = pino.destination({ dest: file, sync: true, mkdir: true, append: true }) as Destination;
  destination = target;
  return () => {
    destination = previous;
    target.end?.();
  };
}
