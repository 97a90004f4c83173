import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { useClickHouseRelay } from '../infra/clickhouse';
import { LiveTrainer, bootstrapModel, openRegistry, type AppConfig } from '../jobs';
import { lowerThreadPriority } from '../infra/threadPriority';
import { createLogger } from '../logging';
import { prepareServing } from '../serving';
import type { TrainerThreadData, ToTrainer, FromTrainer } from './trainerThread';

/**
 * The live loop's trainer on a worker thread (see `trainerThread.ts`): TF.js steps that take most
 * of a second each run here, so that the thread which ingests and serves never waits for one.
 */
const log = createLogger('cli.trainer-thread');
const { config, relay, prepare } = workerData as TrainerThreadData & { readonly relay?: MessagePort };
// Before TensorFlow or ONNX Runtime start their thread pools here: they inherit this thread's nice value.
const priority = lowerThreadPriority(config.live.niceness);
if (priority.applied) log.info({ threadId: priority.threadId, niceness: priority.niceness }, 'the trainer thread runs at a lower priority than ingest and serving');
else if (config.live.niceness > 0) log.warn({ reason: priority.reason }, 'the trainer thread runs at the same priority as ingest and serving');
if (relay) useClickHouseRelay(relay, config.clickhouse.url);
const port = parentPort as NonNullable<typeof parentPort>;
const registry = openRegistry(config);
const stop = new AbortController();
const post = (message: FromTrainer): void => port.postMessage(message);
/** What the main thread's server loads for a checkpoint, made here before it is published. */
const prepareFor = (checkpointId: string): Promise<unknown> => prepareServing(config, checkpointId);

async function bootstrap(model: 'ccfrec' | 'sasrec', epochs: number): Promise<void> {
  const started = Date.now();
  const { publication } = await bootstrapModel(config, registry, { model, epochs, ...(prepare ? { prepare: prepareFor } : {}) });
  post({ type: 'bootstrapped', version: publication.model.version, checkpointId: publication.model.checkpointId, seconds: (Date.now() - started) / 1000 });
}

async function live(settings: AppConfig['live']): Promise<void> {
  const trainer = await LiveTrainer.start({ config, registry, live: settings, ...(prepare ? { prepare: prepareFor } : {}) });
  try {
    post({ type: 'started', runId: trainer.runId, version: trainer.liveVersion.version, checkpointId: trainer.liveVersion.checkpointId });
    await trainer.run(stop.signal, (step) => post({ type: 'step', step }));
  } finally {
    await trainer.close();
  }
  post({ type: 'stopped' });
}

port.on('message', (message: ToTrainer) => {
  if (message.type === 'stop') {
    stop.abort();
    return;
  }
  const work = message.type === 'bootstrap' ? bootstrap(message.model, message.epochs) : live(message.settings);
  work.catch((error: unknown) => {
    log.error({ err: error }, 'the trainer thread failed');
    const e = error instanceof Error ? error : new Error(String(error));
    post({ type: 'failed', error: { name: e.name, message: e.message, ...(e.stack ? { stack: e.stack } : {}) } });
  });
});
