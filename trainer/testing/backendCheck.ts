/**
 * Child-process half of wasm.test.ts: initialises the backend named by STREAMREC_TF_BACKEND
 * (initTf selects once per process), then prints one JSON line with an embedding-lookup gradient
 * and one training step of each model on the tiny fixture. Not part of the library.
 */
import { initTf } from '../../infra/tf';
import { backendCheck } from './backendCheckCases';

initTf()
  .then((info) => {
    process.stdout.write(`${JSON.stringify({ backend: info.backend, ...backendCheck() })}\n`);
  })
  .catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  });
