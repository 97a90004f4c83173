import { mkdtempSync, rmSync, utimesSync, writeFileSync, existsSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { withFileLock } from './fileLock';

describe('withFileLock', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'streamrec-lock-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('runs holders one at a time, and removes the file after the last', async () => {
    const file = path.join(dir, 'a.lock');
    const spans: Array<[number, number]> = [];
    const hold = (ms: number) => withFileLock(file, async () => {
      const start = performance.now();
      await new Promise((r) => setTimeout(r, ms));
      spans.push([start, performance.now()]);
    }, { pollMs: 5 });
    await Promise.all([hold(60), hold(30), hold(10)]);
    spans.sort((a, b) => a[0] - b[0]);
    for (let i = 1; i < spans.length; i++) expect(spans[i]?.[0]).toBeGreaterThanOrEqual(spans[i - 1]?.[1] as number);
    expect(existsSync(file)).toBe(false);
  });

  it('waits for a lock another process holds, and takes over one left unrefreshed past staleMs', async () => {
    const file = path.join(dir, 'b.lock');
    writeFileSync(file, 'other-host pid 1');
    let ran = false;
    const waiting = withFileLock(file, async () => void (ran = true), { staleMs: 400, pollMs: 10 });
    await new Promise((r) => setTimeout(r, 100));
    expect(ran).toBe(false); // fresh: held
    const old = new Date(Date.now() - 1000);
    utimesSync(file, old, old); // its holder died: not refreshed any more
    await waiting;
    expect(ran).toBe(true);
    expect(existsSync(file)).toBe(false);
  });

  it('takes over at once a lock whose holder on this host no longer runs', async () => {
    const file = path.join(dir, 'e.lock');
    writeFileSync(file, `${hostname()} pid 999999999 rebuild x`); // no such process
    let ran = false;
    await withFileLock(file, async () => void (ran = true), { pollMs: 10 });
    expect(ran).toBe(true);
  });

  it('lets one of two waiters on a stale lock hold it at a time', async () => {
    const file = path.join(dir, 'f.lock');
    writeFileSync(file, 'other-host pid 1');
    const old = new Date(Date.now() - 60_000);
    utimesSync(file, old, old);
    let holding = 0;
    let most = 0;
    const hold = () => withFileLock(file, async () => {
      most = Math.max(most, ++holding);
      await new Promise((r) => setTimeout(r, 100));
      holding--;
    }, { staleMs: 300, pollMs: 5 });
    await Promise.all([hold(), hold(), hold()]);
    expect(most).toBe(1);
    expect(existsSync(file)).toBe(false);
  });

  it('keeps a long holder\'s lock fresh, so that a waiter does not take it over', async () => {
    const file = path.join(dir, 'c.lock');
    const order: string[] = [];
    const long = withFileLock(file, async () => {
      order.push('long start');
      await new Promise((r) => setTimeout(r, 500));
      order.push('long end');
    }, { staleMs: 150, pollMs: 10 });
    await new Promise((r) => setTimeout(r, 20));
    await withFileLock(file, async () => void order.push('second'), { staleMs: 150, pollMs: 10 });
    await long;
    expect(order).toEqual(['long start', 'long end', 'second']);
  });

  it('releases the lock when the work fails, and passes the failure on', async () => {
    const file = path.join(dir, 'd.lock');
    await expect(withFileLock(file, async () => { throw new Error('boom'); })).rejects.toThrow('boom');
    expect(existsSync(file)).toBe(false);
  });
});
