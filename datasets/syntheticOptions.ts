import { z } from 'zod';
import { DatasetError } from '../errors';
import { SYNTHETIC_TOPICS } from './syntheticVocabulary';

/**
 * Settings of the synthetic world (see synthetic.ts). Strict: unknown keys are errors; every key
 * has a default, sized for `npm run demo` (about 1,000 users, 1,200 items, 24,000 clicks over 90
 * days, generated in a fraction of a second).
 */
export const SyntheticOptions = z
  .strictObject({
    seed: z.number().int().min(0).max(0xffffffff).default(42).describe('Seed of the one Random every choice of the world comes from.'),
    users: z.number().int().min(1).max(1_000_000).default(1000).describe('Number of users.'),
    items: z.number().int().min(2).max(1_000_000).default(1200).describe('Number of catalog items (at least 2 per topic).'),
    topics: z
      .number()
      .int()
      .min(2)
      .max(SYNTHETIC_TOPICS.length)
      .default(SYNTHETIC_TOPICS.length)
      .describe(`Number of topics, the first ones of the built-in list (at most ${SYNTHETIC_TOPICS.length}).`),
    meanEventsPerUser: z.number().min(1).max(1000).default(24).describe('Mean number of clicks per user (lognormal around it, never below minEventsPerUser).'),
    minEventsPerUser: z.number().int().min(1).max(1000).default(5).describe('Fewest clicks a user has.'),
    days: z.number().positive().max(3650).default(90).describe('Length of the timeline in days.'),
    start: z
      .number()
      .int()
      .min(0)
      .default(Date.UTC(2024, 0, 1))
      .describe('Start of the timeline, epoch ms (default 2024-01-01T00:00Z); the catalog exists from then on.'),
    newItemFraction: z
      .number()
      .min(0)
      .max(0.9)
      .default(0.1)
      .describe('Share of items introduced mid-stream (uniformly between 10% and 90% of the timeline) instead of at the start.'),
    driftRate: z
      .number()
      .min(0)
      .max(20)
      .default(0.5)
      .describe(
        'Taste drift: the expected number of dominant-topic switches per user per 30 days; it also scales the random walk of ' +
          'the taste weights. 0 = every taste is fixed.',
      ),
    secondaryTopicFraction: z.number().min(0).max(1).default(0.15).describe('Share of items that mix a word of a second topic into their text.'),
    descriptionFraction: z.number().min(0).max(1).default(0.6).describe('Share of items with a one-sentence description.'),
    zipfExponent: z.number().min(0).max(4).default(1).describe('Skew of item popularity within a topic: product line of rank r gets weight 1 / r^s.'),
    meanSessionLength: z.number().min(1).max(100).default(4).describe('Mean number of clicks in one session.'),
  })
  .superRefine((o, ctx) => {
    if (o.meanEventsPerUser < o.minEventsPerUser) {
      ctx.addIssue({
        code: 'custom',
        path: ['meanEventsPerUser'],
        message: `expected at least minEventsPerUser (${o.minEventsPerUser}), got ${o.meanEventsPerUser}`,
      });
    }
    if (o.items < 2 * o.topics) {
      ctx.addIssue({ code: 'custom', path: ['items'], message: `expected at least 2 items per topic (${2 * o.topics} for ${o.topics} topics), got ${o.items}` });
    }
  })
  .describe('The synthetic world: users with drifting tastes clicking through hobby-topic product lines in sessions.');
export type SyntheticOptions = z.input<typeof SyntheticOptions>;
export type ResolvedSyntheticOptions = z.output<typeof SyntheticOptions>;

/** The name under which {@link loadDataset} builds the synthetic world. */
export const SYNTHETIC_NAME = 'synthetic';

/** Every option, for messages. */
export const SYNTHETIC_OPTION_KEYS = Object.keys(SyntheticOptions.shape) as Array<keyof ResolvedSyntheticOptions>;

/** Options with defaults filled in; a bad value is a {@link DatasetError} naming the key, what was expected and what was received. */
export function resolveSyntheticOptions(options: SyntheticOptions = {}, where = 'synthetic options'): ResolvedSyntheticOptions {
  const parsed = SyntheticOptions.safeParse(options);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const key = issue.path.join('.');
  if (issue.code === 'unrecognized_keys') {
    throw new DatasetError(`${where}: unknown option ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}; expected one of ${SYNTHETIC_OPTION_KEYS.join(', ')}`, {
      context: { field: issue.keys[0] },
    });
  }
  const received = JSON.stringify((options as Record<string, unknown>)[key]);
  const what = SyntheticOptions.shape[key as keyof ResolvedSyntheticOptions]?.description?.replace(/\.$/, '');
  const message = issue.code === 'custom' ? issue.message : `${issue.message}, got ${received}`;
  throw new DatasetError(`${where}: option ${key}${what ? ` (${what})` : ''}: ${message}`, { context: { field: key } });
}

/** True when `name` asks for the built-in world: `synthetic` or `synthetic:<key>=<value>,...`. */
export function isSyntheticSpec(name: string): boolean {
  return name === SYNTHETIC_NAME || name.startsWith(`${SYNTHETIC_NAME}:`);
}

/**
 * Parses `synthetic` or `synthetic:users=500,items=800,seed=3` into resolved options. Every value
 * is a number; an unknown key, a repeated key, a missing `=` or a value that is not a number or
 * out of range is a {@link DatasetError} that names the key, what was expected and what was received.
 */
export function parseSyntheticSpec(spec: string): ResolvedSyntheticOptions {
  if (!isSyntheticSpec(spec)) throw new DatasetError(`expected "synthetic" or "synthetic:key=value,...", got ${JSON.stringify(spec)}`);
  const where = `dataset ${JSON.stringify(spec)}`;
  const body = spec.slice(SYNTHETIC_NAME.length + 1).trim();
  const options: Record<string, number> = {};
  if (body.length === 0) return resolveSyntheticOptions(options, where);
  for (const part of body.split(',')) {
    const eq = part.indexOf('=');
    if (eq < 0) throw new DatasetError(`${where}: expected key=value, got ${JSON.stringify(part)}`);
    const key = part.slice(0, eq).trim();
    const raw = part.slice(eq + 1).trim();
    if (!(SYNTHETIC_OPTION_KEYS as string[]).includes(key)) {
      throw new DatasetError(`${where}: unknown option ${JSON.stringify(key)}; expected one of ${SYNTHETIC_OPTION_KEYS.join(', ')}`, { context: { field: key } });
    }
    if (key in options) throw new DatasetError(`${where}: option ${key} given twice`, { context: { field: key } });
    const value = raw.length === 0 ? Number.NaN : Number(raw);
    if (!Number.isFinite(value)) throw new DatasetError(`${where}: option ${key} expects a number, got ${JSON.stringify(raw)}`, { context: { field: key } });
    options[key] = value;
  }
  return resolveSyntheticOptions(options, where);
}
