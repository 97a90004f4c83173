import { randomUUID } from 'node:crypto';
import { mkdir, readFile, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { createLogger } from '../logging';
import { sleep } from './retry';

const log = createLogger('infra.fileLock');

export interface FileLockOptions {
  /**
   * A lock file that has not changed (content or mtime) for this long, by the waiter's own clock,
   * is taken to be left by a holder that died (ms; default 10 minutes: well above the longest
   * stretch a holder's event loop may be busy and unable to refresh it).
   */
  readonly staleMs?: number;
  /** How often a waiter looks again (ms). */
  readonly pollMs?: number;
  /** What holds it, for the log lines of whoever waits. */
  readonly what?: string;
}

/** Whether the lock's holder is a process on this host that no longer runs (its token names host and pid). */
function holderGone(token: string): boolean {
  const [host, word, pid] = token.split(' ');
  if (host !== hostname() || word !== 'pid' || !/^\d+$/.test(pid ?? '')) return false;
  try {
    process.kill(Number(pid), 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/**
 * Runs `work` while holding `file` as a lock between processes, also on other hosts sharing the
 * directory (containers on one volume): the file is created exclusively with a token naming the
 * holder, refreshed while held (its mtime every staleMs / 3) and removed after. A waiter looks
 * again every pollMs. It takes a lock over when its holder is a process of this host that no
 * longer runs, or when the lock has not changed for staleMs by the waiter's own clock (no clock
 * is compared between hosts); it moves the file aside first and removes it only if it is still
 * the one it judged (another waiter may have taken it over and locked again meanwhile).
 */
export async function withFileLock<T>(file: string, work: () => Promise<T>, options: FileLockOptions = {}): Promise<T> {
  const staleMs = options.staleMs ?? 10 * 60_000;
  const pollMs = options.pollMs ?? 200;
  const token = `${hostname()} pid ${process.pid} ${options.what ?? ''} ${randomUUID()}`;
  let seen: { readonly token: string; readonly mtimeMs: number; readonly since: number } | undefined;
  let waited = false;
  await mkdir(path.dirname(file), { recursive: true });
  for (;;) {
    try {
      await writeFile(file, token, { flag: 'wx' });
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const [held, holder] = await Promise.all([stat(file).catch(() => undefined), readFile(file, 'utf8').catch(() => undefined)]);
    if (!held || holder === undefined) continue; // released meanwhile
    const now = performance.now();
    if (seen?.token !== holder || seen.mtimeMs !== held.mtimeMs) seen = { token: holder, mtimeMs: held.mtimeMs, since: now };
    if (holderGone(holder) || now - seen.since > staleMs) {
      // Aside first, then look: only the lock judged stale is removed, never a fresh one.
      const aside = `${file}.stale-${randomUUID()}`;
      if (await rename(file, aside).then(() => true, () => false)) {
        const moved = await readFile(aside, 'utf8').catch(() => undefined);
        if (moved === holder) {
          log.warn({ file, holder, unchangedMs: Math.round(now - seen.since) }, 'taking over a lock its holder left');
          await rm(aside, { force: true });
        } else {
          // Someone else's fresh lock: put it back unless a new one is there already (then that one holds).
          await rename(aside, file).catch(() => rm(aside, { force: true }));
        }
      }
      seen = undefined;
      continue;
    }
    if (!waited) {
      waited = true;
      log.info({ file, holder, what: options.what }, 'waiting for a lock another process holds');
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
