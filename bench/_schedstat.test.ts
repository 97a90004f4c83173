import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { processTree, readAll, readSchedstat, schedstatRates } from './_schedstat';

const linux = existsSync(`/proc/${process.pid}/task/${process.pid}/schedstat`);

describe('scheduler statistics of the bench processes', () => {
  (linux ? it : it.skip)('count this process\'s main thread running while it spins, and find a child in its tree', async () => {
    const spin = (): ReturnType<typeof schedstatRates>[number] | undefined => {
      const before = readAll([process.pid]);
      const started = performance.now();
      while (performance.now() - started < 200) {
        // spin: the main thread is on a CPU
      }
      return schedstatRates(before, readAll([process.pid]), (performance.now() - started) / 1000)[0];
    };
    // The best of up to three spins: other test workers on the 2 cores can take one spin's share
    // below the bound (0.26 of a core was seen once) without the counters being wrong.
    let rates = spin();
    for (let tries = 1; tries < 3 && (rates?.run_ms_per_s ?? 0) <= 300; tries++) rates = spin();
    expect(rates?.pid).toBe(process.pid);
    expect(rates?.run_ms_per_s).toBeGreaterThan(300); // at least 0.3 of a core over a spin (a loaded CI machine shares it)
    expect(rates?.wait_ms_per_s).toBeGreaterThanOrEqual(0);

    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 5000)'], { stdio: 'ignore' });
    try {
      await new Promise((resolve) => child.once('spawn', resolve));
      expect(processTree(process.pid)).toEqual(expect.arrayContaining([process.pid, child.pid]));
      expect(processTree(child.pid as number)).toEqual([child.pid]);
    } finally {
      child.kill();
    }
  });

  it('read nothing for a process that does not exist, and leave it out of the rates', () => {
    expect(readSchedstat(2 ** 30)).toBeUndefined();
    const rates = schedstatRates(new Map([[2 ** 30, undefined]]), new Map([[2 ** 30, undefined]]), 1);
    expect(rates).toEqual([]);
  });
});
