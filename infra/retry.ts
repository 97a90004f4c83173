import { isRetriable } from '../errors';

/** How to retry a failing call. Tests pass a fast policy. */
export interface RetryPolicy {
  /** Retries after the first attempt (0 = no retry). */
  readonly retries: number;
  readonly initialDelayMs: number;
  readonly factor?: number;
  readonly maxDelayMs?: number;
  /** Which errors are worth retrying (default: StreamrecError.retriable). */
  readonly isRetriable?: (error: unknown) => boolean;
  /** Called before each wait (for logs and metrics). */
  readonly onRetry?: (error: unknown, attempt: number, delayMs: number) => void;
}

/** Resolves after `ms`, or as soon as `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** Runs `fn`, retrying retriable failures with exponential backoff; rethrows the last error. */
export async function retry<T>(fn: (attempt: number) => Promise<T>, policy: RetryPolicy): Promise<T> {
  const factor = policy.factor ?? 2;
  const maxDelay = policy.maxDelayMs ?? 30_000;
  const retriable = policy.isRetriable ?? isRetriable;
  let delay = policy.initialDelayMs;
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (error) {
      if (attempt >= policy.retries || !retriable(error)) throw error;
      policy.onRetry?.(error, attempt + 1, delay);
      await sleep(delay);
      delay = Math.min(maxDelay, delay * factor);
    }
  }
}
