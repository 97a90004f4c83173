import { Option, type Command } from 'commander';
import { ConfigError } from '../errors';
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

/** The live trainer's wake-up flags, as `streamrec trainer` and `streamrec run` take them. */
export interface LiveWakeFlags {
  readonly interval?: string;
  readonly wakeEvents?: string;
}

/** Adds `--interval` and `--wake-events` (live.intervalSeconds, live.wakeEvents) to a command. */
export function addLiveWakeOptions(command: Command): Command {
  return command
    .option('--interval <seconds>', 'how often the trainer looks for new interactions (default: live.intervalSeconds)')
    .option('--wake-events <n>', 'look at once when this many new interactions are archived, before the interval is up; 0: the interval alone (default: live.wakeEvents)');
}

/** The `live` settings `--interval` and `--wake-events` give (nothing for a flag not given); a bad value is a ConfigError naming the flag. */
export function liveWakeOverrides(flags: LiveWakeFlags): { live?: { intervalSeconds?: number; wakeEvents?: number } } {
  const live: { intervalSeconds?: number; wakeEvents?: number } = {};
  if (flags.interval !== undefined) {
    const interval = Number(flags.interval);
    if (!(Number.isFinite(interval) && interval > 0)) throw new ConfigError(`--interval: expected a positive number of seconds, got ${JSON.stringify(flags.interval)}`);
    live.intervalSeconds = interval;
  }
  if (flags.wakeEvents !== undefined) {
    const n = Number(flags.wakeEvents);
    if (!Number.isInteger(n) || n < 0) throw new ConfigError(`--wake-events: expected a whole number >= 0, got ${JSON.stringify(flags.wakeEvents)}`);
    live.wakeEvents = n;
  }
  return Object.keys(live).length > 0 ? { live } : {};
}
