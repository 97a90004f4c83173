import { Option, type Command } from 'commander';
import { TRAINER_FLAGS, camelFlag } from '../jobs';

/** Adds every trainer flag (jobs/trainerFlags.ts) to a command; aliases are accepted but not listed. */
export function addTrainerOptions(command: Command): Command {
  for (const spec of TRAINER_FLAGS) {
    const description = spec.only ? `${spec.description} (${spec.only === 'ccfrec' ? 'CCFRec' : 'SASRec'})` : spec.description;
    command.addOption(new Option(spec.kind === 'boolean' ? `--${spec.flag}` : `--${spec.flag} <value>`, description));
    for (const alias of spec.aliases ?? []) command.addOption(new Option(`--${alias} <value>`, description).hideHelp());
  }
  return command;
}

/** The trainer flags a command was given, keyed by flag name (what trainerConfigFromFlags reads). */
export function trainerFlagValues(opts: Readonly<Record<string, unknown>>): Record<string, string | boolean | undefined> {
  const out: Record<string, string | boolean | undefined> = {};
  for (const spec of TRAINER_FLAGS) {
    for (const name of [spec.flag, ...(spec.aliases ?? [])]) {
      const value = opts[camelFlag(name)];
      if (typeof value === 'string' || typeof value === 'boolean') out[name] = value;
    }
  }
  return out;
}
