import { existsSync } from 'node:fs';
import { Worker, type WorkerOptions } from 'node:worker_threads';

/**
 * Starts a worker thread on a module given without its extension (`path.join(__dirname, 'x')`):
 * the compiled `x.js` when it exists (dist/), otherwise the source `x.ts` through tsx, as the CLI
 * runs from a checkout with edited sources.
 */
export function startWorker(moduleWithoutExtension: string, options: WorkerOptions = {}): Worker {
  const compiled = `${moduleWithoutExtension}.js`;
  if (existsSync(compiled)) return new Worker(compiled, options);
  const source = `${moduleWithoutExtension}.ts`;
  if (!existsSync(source)) throw new Error(`worker module ${moduleWithoutExtension}: neither .js nor .ts exists`);
  return new Worker(source, { ...options, execArgv: [...(options.execArgv ?? []), '--require', 'tsx/cjs'] });
}
