/**
 * `npm run bench -- <name> [options]`: runs bench/<name>.ts. Each benchmark prints progress to
 * stderr and, as the last line of stdout, one JSON object with its numbers.
 *
 * The script runs this process with V8's memory reducer off (`--no-memory-reducer`, package.json):
 * a benchmark process that waits while a child measures (bench serving's load generator, its
 * server) would otherwise, once idle, shrink its heap with full collections whose parallel marking
 * takes both cores of a 2-core machine from what is measured. Seen in bench serving's open-loop
 * runs at 100,000 items: three such collections (220, 41, 18 ms pauses plus marking threads)
 * stalled both server workers for ~2 s, p99 33-57 ms in the run they fell in, 4.4-5.0 ms in the
 * others; with the flag, five runs in a row 4.37-5.02 ms. Children are forked with flags of their own.
 */
import path from 'node:path';
import { existsSync, readdirSync } from 'node:fs';
import { ConfigError } from '../errors';

export interface BenchModule {
  run(args: string[]): Promise<Record<string, unknown>>;
}

async function main(): Promise<void> {
  const [name, ...args] = process.argv.slice(2);
  const available = readdirSync(__dirname)
    .filter((f) => f.endsWith('.ts') && f !== 'index.ts' && !f.endsWith('.test.ts') && !f.startsWith('_'))
    .map((f) => f.replace(/\.ts$/, ''));
  if (!name || !available.includes(name)) {
    process.stderr.write(`usage: npm run bench -- <name> [options]\navailable: ${available.join(', ')}\n`);
    process.exitCode = 2;
    return;
  }
  const file = path.join(__dirname, `${name}.ts`);
  if (!existsSync(file)) throw new Error(`no benchmark ${file}`);
  const mod = require(file) as BenchModule;
  const result = await mod.run(args);
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().catch((error: unknown) => {
  // A wrong flag gets its message; anything else its stack.
  const text = error instanceof ConfigError ? error.message : error instanceof Error ? (error.stack ?? error.message) : String(error);
  process.stderr.write(`${text}\n`);
  process.exitCode = 1;
});
