/**
 * The worker thread of {@link InferenceThread} (serving/onnx/inferenceThread.ts): ONNX Runtime
 * sessions (user encoders, item scorers) opened and run here, so that their runs never hold the
 * server's event loop. Started by InferenceThread only.
 */
import { parentPort } from 'node:worker_threads';
import { describeError, ownBuffer } from './inferenceProtocol';
import type { InferenceReply, InferenceRequest } from './inferenceProtocol';
import { OnnxItemScorer } from './itemScorer';
import { OnnxUserEncoder } from './onnxUserEncoder';

const port = parentPort;
if (!port) throw new Error('serving/onnx/inferenceWorker runs as a worker thread (InferenceThread starts it)');

const encoders = new Map<number, OnnxUserEncoder>();
const scorers = new Map<number, OnnxItemScorer>();
let nextHandle = 1;

function opened<T>(engines: ReadonlyMap<number, T>, handle: number, what: string): T {
  const found = engines.get(handle);
  if (!found) throw new Error(`inference thread: no ${what} with handle ${handle} (closed, or never opened)`);
  return found;
}

async function handle(request: InferenceRequest): Promise<InferenceReply> {
  switch (request.op) {
    case 'openEncoder': {
      const encoder = await OnnxUserEncoder.create(request.model, request.settings, request.options);
      encoders.set(nextHandle, encoder);
      return { id: request.id, ok: true, handle: nextHandle++ };
    }
    case 'openScorer': {
      const scorer = await OnnxItemScorer.create(request.table, request.dims, request.threads === undefined ? {} : { threads: request.threads });
      scorers.set(nextHandle, scorer);
      return { id: request.id, ok: true, handle: nextHandle++, maxRowNorm: scorer.maxRowNorm };
    }
    case 'encode': {
      const { size, maxLength, items, lengths } = request;
      const vectors = await opened(encoders, request.handle, 'user encoder').encode({ size, maxLength, items, lengths, targets: new Int32Array(size) });
      return { id: request.id, ok: true, values: vectors };
    }
    case 'scores': {
      const scores = await opened(scorers, request.handle, 'item scorer').scores(request.queries, request.batch);
      // A view of the session's output: copied when it is a part of it (never for one caller's batch).
      return { id: request.id, ok: true, values: ownBuffer(scores) };
    }
    case 'close': {
      const found = encoders.get(request.handle) ?? scorers.get(request.handle);
      encoders.delete(request.handle);
      scorers.delete(request.handle);
      await found?.dispose();
      return { id: request.id, ok: true };
    }
  }
}

port.on('message', (request: InferenceRequest) => {
  handle(request).then(
    (reply) => {
      if (!reply.ok || !reply.values) return port.postMessage(reply);
      try {
        port.postMessage(reply, [reply.values.buffer as ArrayBuffer]); // moved, not copied
      } catch {
        port.postMessage(reply); // a buffer the runtime owns cannot be moved: copied
      }
    },
    (error: unknown) => port.postMessage({ id: request.id, ok: false, error: describeError(error) } satisfies InferenceReply),
  );
});
