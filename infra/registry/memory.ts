import { createLogger } from '../../logging';
import { nextPublication, type CheckpointLookup, type ModelRegistry, type PublishRequest, type PublishedModel, type WatchOptions } from './modelRegistry';

const log = createLogger('infra.registry');

/** A model registry in this process's memory (tests, a demo in one process). */
export class MemoryModelRegistry implements ModelRegistry {
  readonly url = 'memory:';
  private readonly records: PublishedModel[] = [];
  private readonly listeners = new Set<(model: PublishedModel) => void>();
  /** Publications run one at a time, so the version guard sees the previous one. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly lookup: CheckpointLookup) {}

  publish(request: PublishRequest): Promise<PublishedModel> {
    const run = this.queue.then(async () => {
      const record = await nextPublication(request, this.records.at(-1), this.records.length, this.lookup, this.url);
      this.records.push(record);
      for (const listener of [...this.listeners]) queueMicrotask(() => listener(record));
      return record;
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  async live(): Promise<PublishedModel | undefined> {
    return this.records.at(-1);
  }

  async history(): Promise<PublishedModel[]> {
    return [...this.records];
  }

  watch(listener: (model: PublishedModel) => void, options: WatchOptions = {}): () => void {
    const onError = options.onError ?? ((error: unknown) => log.error({ err: error }, 'model registry listener failed'));
    const guarded = (model: PublishedModel): void => {
      try {
        listener(model);
      } catch (error) {
        onError(error);
      }
    };
    this.listeners.add(guarded);
    const stop = (): void => {
      this.listeners.delete(guarded);
      options.signal?.removeEventListener('abort', stop);
    };
    if (options.signal?.aborted) stop();
    else options.signal?.addEventListener('abort', stop);
    return stop;
  }
}
