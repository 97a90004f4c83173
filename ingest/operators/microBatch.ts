import { Observable, asyncScheduler, type OperatorFunction, type SchedulerLike, type Subscription } from 'rxjs';

export interface MicroBatchOptions {
  /** Emit as soon as this many items are buffered. */
  readonly maxCount: number;
  /** Emit at most this long after the first buffered item arrived. */
  readonly maxWaitMs: number;
  readonly scheduler?: SchedulerLike;
}

/**
 * Groups items into micro-batches by count or time, whichever comes first: a batch is emitted
 * when it holds `maxCount` items, or `maxWaitMs` after its first item arrived. Never emits an
 * empty batch; on completion the partial batch is emitted first; on error the partial batch is
 * dropped and the error passed on. The trainer consumes new interactions this way.
 *
 * @example
 * interactions$.pipe(microBatch({ maxCount: 4096, maxWaitMs: 5_000 }))
 */
export function microBatch<T>(options: MicroBatchOptions): OperatorFunction<T, T[]> {
  const { maxCount, maxWaitMs } = options;
  if (!Number.isInteger(maxCount) || maxCount < 1) throw new RangeError(`microBatch: maxCount must be an integer >= 1, got ${maxCount}`);
  if (!(maxWaitMs > 0)) throw new RangeError(`microBatch: maxWaitMs must be > 0, got ${maxWaitMs}`);
  const scheduler = options.scheduler ?? asyncScheduler;
  return (source) =>
    new Observable<T[]>((subscriber) => {
      let buffer: T[] = [];
      let timer: Subscription | undefined;
      const emit = (): void => {
        timer?.unsubscribe();
        timer = undefined;
        if (buffer.length === 0) return;
        const out = buffer;
        buffer = [];
        subscriber.next(out);
      };
      const sub = source.subscribe({
        next: (item) => {
          buffer.push(item);
          if (buffer.length >= maxCount) emit();
          else if (!timer) timer = scheduler.schedule(emit, maxWaitMs);
        },
        error: (err: unknown) => {
          timer?.unsubscribe();
          buffer = [];
          subscriber.error(err);
        },
        complete: () => {
          emit();
          subscriber.complete();
        },
      });
      return () => {
        timer?.unsubscribe();
        sub.unsubscribe();
      };
    });
}
