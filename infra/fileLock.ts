import { randomUUID } from 'node:crypto';
import { mkdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { hostname } from 'node:os';
import { createLogger } from '../logging';
import { sleep } from './retry';

const log = createLogger('infra.fileLock');

export interface FileLockOptions {
  /** A lock file not refreshed for this long is taken to be left by a holder that died (ms). */
  readonly staleMs?: number;
  /** How often a waiter looks again (ms). */
  readonly pollMs?: number;
  /** What holds it, for the log lines of whoever waits. */
  readonly what?: string;
}

/**
 * Runs `work` while holding `file` as a lock between processes, also on other hosts sharing the
 * directory (containers on one volume): the file is created exclusively, refreshed while held
 * (its mtime every staleMs / 3) and removed after. A waiter looks again every pollMs; a lock file
 * older than staleMs is a holder that died without removing it (SIGKILL), and is taken over.
 */
export async function withFileLock<T>(file: string, work: () => Promise<T>, options: FileLockOptions = {}): Promise<T> {
  const staleMs = options.staleMs ?? 60_000;
  const pollMs = options.pollMs ?? 200;
  const token = `${hostname()} pid ${process.pid} ${options.what ?? ''} ${randomUUID()}`;
  let waited = false;
  await mkdir(path.dirname(file), { recursive: true });
  for (;;) {
    try {
      await writeFile(file, token, { flag: 'wx' });
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const held = await stat(file).catch(() => undefined);
    if (held && Date.now() - held.mtimeMs > staleMs) {
      const holder = await readFile(file, 'utf8').catch(() => '?');
      log.warn({ file, holder, ageMs: Math.round(Date.now() - held.mtimeMs), staleMs }, 'taking over a lock its holder left (not refreshed)');
      await rm(file, { force: true });
      continue;
    }
    if (!waited) {
      waited = true;
      log.info({ file, holder: await readFile(file, 'utf8').catch(() => '?'), what: options.what }, 'waiting for a lock another process holds');
    }
    await sleep(pollMs);
  }
  const refresh = setInterval(() => {
    const now = new Date();
    void utimes(file, now, now).catch(() => undefined);
  }, Math.max(10, Math.floor(staleMs / 3)));
  try {
    return await work();
  } finally {
    clearInterval(refresh);
    // Only our own: one taken over as stale (this process stalled past staleMs) is the new holder's.
    if ((await readFile(file, 'utf8').catch(() => undefined)) === token) await rm(file, { force: true });
  }
}
