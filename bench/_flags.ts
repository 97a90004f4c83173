import { ConfigError } from '../errors';

/** `--key value` / `--key=value` flags of a benchmark, checked against the flags it knows. */
export type Flags = Map<string, string>;

export function parseFlags(argv: readonly string[], known: ReadonlySet<string>): Flags {
  const out = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (!a.startsWith('--')) throw new ConfigError(`unexpected argument ${JSON.stringify(a)}`);
    const eq = a.indexOf('=');
    if (eq > 0) out.set(a.slice(2, eq), a.slice(eq + 1));
    else {
      const next = argv[i + 1];
      if (next === undefined || next.startsWith('--')) throw new ConfigError(`flag ${a} needs a value`);
      out.set(a.slice(2), next);
      i++;
    }
  }
  for (const k of out.keys()) if (!known.has(k)) throw new ConfigError(`unknown flag --${k} (known: ${[...known].map((f) => `--${f}`).join(', ')})`);
  return out;
}

/** A numeric flag, or undefined when it was not given. */
export function numberFlag(flags: Flags, key: string): number | undefined {
  const v = flags.get(key);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new ConfigError(`--${key} must be a number, got ${JSON.stringify(v)}`);
  return n;
}
