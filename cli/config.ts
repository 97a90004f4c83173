import { loadConfig, mergeConfig } from '../schemas/loadConfig';
import { StreamrecConfig } from '../schemas/config';

/** Options every command accepts. */
export interface GlobalOptions {
  readonly config?: string;
}

/**
 * The configuration of a command: defaults < `--config` file < `STREAMREC__*` environment <
 * the command's own flags (`overrides`).
 */
export function commandConfig(globals: GlobalOptions, overrides: Record<string, unknown> = {}): StreamrecConfig {
  return loadConfig(StreamrecConfig, {
    ...(globals.config ? { file: globals.config } : {}),
    env: process.env,
    overrides: mergeConfig({}, overrides),
  });
}

/** Drops undefined values so that unset flags do not override lower sources. */
export function defined<T extends Record<string, unknown>>(values: T): Partial<T> {
  return Object.fromEntries(Object.entries(values).filter(([, v]) => v !== undefined)) as Partial<T>;
}
