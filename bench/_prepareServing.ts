/**
 * `prepareServing` in a process of its own (forked by bench/serving.ts, never run by hand), as
 * `streamrec publish --prepare-serving` or the trainer does it beside the servers: the ONNX
 * encoder, item table and indexes of a checkpoint made before it is published. Run in the bench's
 * own process it would stall the load generator there (tens of seconds of export at 100,000
 * items) and the swap run would measure the bench, not the server. Prints the steps' milliseconds
 * as one JSON line on stdout and exits.
 */
import { readFileSync } from 'node:fs';
import { AppConfig } from '../jobs';
import { setLogLevel } from '../logging';
import { prepareServing } from '../serving';

async function main(): Promise<void> {
  setLogLevel(process.env.STREAMREC_LOG_LEVEL ?? 'warn');
  const [configFile, checkpoint] = process.argv.slice(2);
  if (!configFile || !checkpoint) throw new Error('usage: _prepareServing.ts <config.json> <checkpoint id>');
  const config = AppConfig.parse(JSON.parse(readFileSync(configFile, 'utf8')));
  process.stdout.write(`${JSON.stringify(await prepareServing(config, checkpoint))}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
  process.exitCode = 1;
});
