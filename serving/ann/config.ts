import { AnnConfig } from '../../schemas/serving';
import { ConfigError, describeValue } from '../../errors';

/**
 * Settings of serving's candidate index: one strict schema, a default and a description for every
 * key. The measurements behind the defaults are in serving/ann/README.md and `npm run bench -- ann`.
 */

export { AnnConfig, HnswSettings, type AnnConfigInput } from '../../schemas/serving';

/** Parses ANN settings (defaults filled in) or throws a ConfigError naming the key, what was expected and what was received. */
export function parseAnnConfig(input: unknown = {}): AnnConfig {
  const parsed = AnnConfig.safeParse(input, { reportInput: true });
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const key = issue && issue.path.length > 0 ? issue.path.join('.') : '(root)';
  const received = issue && 'input' in issue && issue.input !== undefined ? `; received ${describeValue(issue.input)}` : '';
  const unknown = issue?.code === 'unrecognized_keys' ? ` (unknown keys: ${issue.keys.join(', ')})` : '';
  throw new ConfigError(`ann settings: invalid ${key}: ${issue?.message ?? 'invalid'}${unknown}${received}`, { context: { field: key } });
}
