import { ConfigError } from '../errors';

/** A TCP port from flag `name` (`--port`, `--metrics-port`): a whole number 0..65535 (0: any free port). */
export function portFlag(name: string, value: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new ConfigError(`${name}: expected 0..65535, got ${JSON.stringify(value)}`);
  return port;
}

/** `--retrain-on split|all` of the incremental experiment (its `retrainOn`). */
export function retrainOnFlag(value: string): 'split' | 'all' {
  if (value !== 'split' && value !== 'all') throw new ConfigError(`--retrain-on: expected split or all, got ${JSON.stringify(value)}`);
  return value;
}
