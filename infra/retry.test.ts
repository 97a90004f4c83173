import { ConfigError, StoreError } from '../errors';
import { retry } from './retry';

describe('retry', () => {
  it('retries retriable errors with growing delays and returns the first success', async () => {
    const delays: number[] = [];
    let calls = 0;
    const result = await retry(
      async () => {
        calls++;
        if (calls < 3) throw new StoreError('down', { retriable: true });
        return 'ok';
      },
      { retries: 5, initialDelayMs: 1, factor: 3, onRetry: (_e, _a, d) => delays.push(d) },
    );
    expect(result).toBe('ok');
    expect(calls).toBe(3);
    expect(delays).toEqual([1, 3]);
  });

  it('does not retry errors that are not retriable, and gives up after the budget', async () => {
    let calls = 0;
    await expect(
      retry(async () => {
        calls++;
        throw new ConfigError('bad');
      }, { retries: 5, initialDelayMs: 1 }),
    ).rejects.toThrow('bad');
    expect(calls).toBe(1);
    calls = 0;
    await expect(
      retry(async () => {
        calls++;
        throw new StoreError('down', { retriable: true });
      }, { retries: 2, initialDelayMs: 1 }),
    ).rejects.toThrow('down');
    expect(calls).toBe(3);
  });
});
