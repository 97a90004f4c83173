import { Subject, type OperatorFunction, type Subscription } from 'rxjs';

/**
 * Runs batches through a long-lived RxJS operator chain and hands each result back to the
 * caller as a promise. Operator state (dedupe window, histories) lives in the one subscription,
 * so it carries across batches. The chain must map each input to exactly one output, which all
 * ingest operators do; an error in the chain rejects the batch in flight and every later call.
 */
export class BatchPipeline<I, O> {
  private readonly input = new Subject<I>();
  private readonly waiting: Array<{ resolve: (value: O) => void; reject: (error: unknown) => void }> = [];
  private readonly subscription: Subscription;
  private failure: unknown;

  constructor(operator: OperatorFunction<I, O>) {
    this.subscription = this.input.pipe(operator).subscribe({
      next: (value) => this.waiting.shift()?.resolve(value),
      error: (error: unknown) => {
        this.failure = error ?? new Error('ingest pipeline failed');
        for (const w of this.waiting.splice(0)) w.reject(this.failure);
      },
    });
  }

  process(batch: I): Promise<O> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    return new Promise<O>((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.input.next(batch);
    });
  }

  close(): void {
    this.input.complete();
    this.subscription.unsubscribe();
  }
}
