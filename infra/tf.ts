import * as tf from '@tensorflow/tfjs';
import { BackendError } from '../errors';
import { createLogger } from '../logging';

export { tf };

/**
 * Chooses and initialises the TF.js backend once per process.
 *
 * Order: `STREAMREC_TF_BACKEND` when set (`tensorflow`, `wasm`, `cpu`); otherwise `tensorflow`
 * (tfjs-node, native TensorFlow) when its addon loads, else `wasm`, else `cpu`. The model code
 * only uses plain `tf` ops, so `@tensorflow/tfjs-node-gpu` works the same way where installed.
 */

export type TfBackendName = 'tensorflow' | 'wasm' | 'cpu';

export interface TfBackendInfo {
  readonly backend: TfBackendName;
  /** Why this backend was chosen (and why better ones were not). */
  readonly reason: string;
  readonly attempts: ReadonlyArray<{ backend: TfBackendName; error: string }>;
}

const log = createLogger('infra.tf');
let ready: Promise<TfBackendInfo> | undefined;

function tryTfjsNode(): string | undefined {
  try {
    process.env.TF_CPP_MIN_LOG_LEVEL ??= '2';
    // TensorFlow 2.16+ (absl logging) prints its oneDNN start-up lines before it reads
    // TF_CPP_MIN_LOG_LEVEL; they only appear with oneDNN's custom ops on, which do not make these
    // models faster here (`npm run bench -- train --quick --steps 20`, TF 2.21: SASRec 2,975
    // samples/s with them, 3,885 without; CCFRec 658 and 665). Set it to 1 to have them.
    process.env.TF_ENABLE_ONEDNN_OPTS ??= '0';
    // Loading tfjs-node registers the `tensorflow` backend on the shared tfjs-core.
    require('@tensorflow/tfjs-node');
    return undefined;
  } catch (error) {
    return error instanceof Error ? error.message.split('\n')[0] : String(error);
  }
}

async function tryWasm(): Promise<string | undefined> {
  try {
    const wasm = require('@tensorflow/tfjs-backend-wasm') as typeof import('@tensorflow/tfjs-backend-wasm');
    wasm.setThreadsCount?.(1);
    const { registerWasmExtraKernels } = require('./tfWasmKernels') as typeof import('./tfWasmKernels');
    registerWasmExtraKernels();
    return undefined;
  } catch (error) {
    return error instanceof Error ? error.message.split('\n')[0] : String(error);
  }
}

async function select(): Promise<TfBackendInfo> {
  const wanted = process.env.STREAMREC_TF_BACKEND as TfBackendName | undefined;
  if (wanted && !['tensorflow', 'wasm', 'cpu'].includes(wanted)) {
    throw new BackendError(`STREAMREC_TF_BACKEND must be one of tensorflow, wasm, cpu; got ${JSON.stringify(wanted)}`);
  }
  const order: TfBackendName[] = wanted ? [wanted] : ['tensorflow', 'wasm', 'cpu'];
  const attempts: Array<{ backend: TfBackendName; error: string }> = [];
  for (const backend of order) {
    const loadError = backend === 'tensorflow' ? tryTfjsNode() : backend === 'wasm' ? await tryWasm() : undefined;
    if (loadError === undefined) {
      try {
        if (await tf.setBackend(backend)) {
          await tf.ready();
          // One op at once: tfjs-node loaded on a worker thread that never ran one crashes the
          // process at exit (SIGSEGV in its teardown; measured with tfjs-node 4.22 on Node 20).
          tf.tidy(() => tf.scalar(1).add(1).dataSync());
          const reason = wanted
            ? `chosen by STREAMREC_TF_BACKEND=${wanted}`
            : attempts.length === 0
              ? `${backend} is the fastest backend available`
              : `fell back to ${backend}: ${attempts.map((a) => `${a.backend} unavailable (${a.error})`).join('; ')}`;
          log.info({ backend, reason }, 'tf backend ready');
          return { backend, reason, attempts };
        }
        attempts.push({ backend, error: 'setBackend returned false' });
      } catch (error) {
        attempts.push({ backend, error: error instanceof Error ? error.message : String(error) });
      }
    } else {
      attempts.push({ backend, error: loadError });
    }
  }
  throw new BackendError(`no TF.js backend could be initialised: ${attempts.map((a) => `${a.backend}: ${a.error}`).join('; ')}`);
}

/** Initialises the backend (once) and says which one runs and why. */
export function initTf(): Promise<TfBackendInfo> {
  ready ??= select();
  return ready;
}
