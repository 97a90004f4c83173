import { Command } from 'commander';
import { StreamrecError } from '../errors';
import { setLogLevel } from '../logging';
import { STREAMREC_VERSION } from '../version';
import type { GlobalOptions } from './config';
import { registerDemo } from './commands/demo';
import { registerDoctor } from './commands/doctor';
import { registerIngest } from './commands/ingest';
import { registerReplay } from './commands/replay';
import { registerRebuild } from './commands/rebuild';
import { registerTrain } from './commands/train';
import { registerEval } from './commands/eval';
import { registerPublish } from './commands/publish';
import { registerServe } from './commands/serve';
import { registerExperiment } from './commands/experiment';
import { registerTrainer } from './commands/trainer';
import { registerRun } from './commands/run';
import { registerReport } from './commands/report';

/** Builds the `streamrec` command line. */
export function buildProgram(): Command {
  const program = new Command('streamrec')
    .description('Stream-processing recommender: Kafka ingest, semantic IDs, CCFRec in TensorFlow.js, ClickHouse metrics')
    .version(STREAMREC_VERSION)
    .option('-c, --config <file>', 'JSON config file (overridden by STREAMREC__* environment variables and flags)')
    .option('--log-level <level>', 'log level (trace, debug, info, warn, error, silent)')
    .hook('preAction', (cmd) => {
      const level = cmd.opts<{ logLevel?: string }>().logLevel;
      if (level) setLogLevel(level);
    });
  const globals = (): GlobalOptions => program.opts<GlobalOptions>();
  registerDemo(program, globals);
  registerReplay(program, globals);
  registerIngest(program, globals);
  registerRebuild(program, globals);
  registerTrain(program, globals);
  registerEval(program, globals);
  registerPublish(program, globals);
  registerServe(program, globals);
  registerExperiment(program, globals);
  registerTrainer(program, globals);
  registerRun(program, globals);
  registerReport(program, globals);
  registerDoctor(program, globals);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (error) {
    if (error instanceof StreamrecError) {
      process.stderr.write(`streamrec: ${error.message}\n`);
      process.exitCode = 1;
      return;
    }
    throw error;
  }
}

if (require.main === module) {
  main(process.argv).catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  });
}
