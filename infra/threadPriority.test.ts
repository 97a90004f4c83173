import { getPriority } from 'node:os';
import { Worker } from 'node:worker_threads';
import { lowerThreadPriority } from './threadPriority';

const onLinux = process.platform === 'linux' ? describe : describe.skip;

describe('lowerThreadPriority', () => {
  it('rejects a nice value outside 0..19', () => {
    expect(() => lowerThreadPriority(-1)).toThrow(/expected an integer in 0..19, got -1/);
    expect(() => lowerThreadPriority(20)).toThrow(RangeError);
    expect(() => lowerThreadPriority(2.5)).toThrow(RangeError);
  });

  it('changes nothing at 0', () => {
    expect(lowerThreadPriority(0)).toEqual({ applied: false, reason: expect.stringMatching(/niceness 0/) });
  });

  // On Linux getpriority and setpriority take a thread id.
  onLinux('on Linux', () => {
    it('lowers the calling worker thread and the threads it starts, not the process', async () => {
      // The worker lowers itself, then starts a thread of its own (as TensorFlow starts its pool) and reports both ids.
      const source = `
        const { parentPort, Worker } = require('node:worker_threads');
        const { readlinkSync } = require('node:fs');
        const result = require(${JSON.stringify(require.resolve('./threadPriority'))}).lowerThreadPriority(7);
        const child = new Worker("require('node:worker_threads').parentPort.postMessage(Number(require('node:fs').readlinkSync('/proc/thread-self').split('/').pop())); setTimeout(() => {}, 2000)", { eval: true });
        child.once('message', (childId) => { parentPort.postMessage({ result, childId }); setTimeout(() => child.terminate(), 2000); });
      `;
      const before = getPriority(process.pid);
      const worker = new Worker(source, { eval: true, execArgv: ['--require', 'tsx/cjs'] });
      try {
        const { result, childId } = await new Promise<{ result: ReturnType<typeof lowerThreadPriority>; childId: number }>((resolve, reject) => {
          worker.once('message', resolve);
          worker.once('error', reject);
        });
        expect(result).toEqual({ applied: true, threadId: expect.any(Number), niceness: 7 });
        if (!result.applied) return;
        expect(result.threadId).not.toBe(process.pid);
        expect(getPriority(result.threadId)).toBe(7);
        expect(getPriority(childId)).toBe(7);
        expect(getPriority(process.pid)).toBe(before);
      } finally {
        await worker.terminate();
      }
    });
  });
});
