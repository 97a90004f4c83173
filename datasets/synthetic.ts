import { Random } from '../random';
import type { ItemEvent } from '../schemas/events';
import { buildSyntheticCatalog } from './syntheticCatalog';
import { drawClicks, drawIndex, ItemSampler } from './syntheticClicks';
import { resolveSyntheticOptions, SYNTHETIC_NAME, type ResolvedSyntheticOptions, type SyntheticOptions } from './syntheticOptions';
import type { SyntheticTopic } from './syntheticVocabulary';
import type { LoadedDataset, UserSequence } from './types';

/**
 * A seeded synthetic world, the embedded default dataset (`loadDataset('synthetic')`): hobby
 * topics with product lines of ordinary English titles, users whose topic tastes drift, clicks in
 * sessions, and items that appear mid-stream. It needs no file and no network, and it comes with
 * its ground truth, so that a model's tracking of the drift can be measured.
 *
 * Every choice comes from one {@link Random} created from `seed` (the catalog and each user from
 * forks of it). The catalog is built in syntheticCatalog.ts, the clicks in syntheticClicks.ts;
 * here, each user's taste over topics: 1-3 dominant topics (Dirichlet-like weights) plus 5%
 * background spread by topic popularity. With `driftRate` > 0 the log-weights of the dominant
 * topics random-walk (standard deviation 1.2 x driftRate per 30 days, one step per knot of about
 * a day), and at Poisson(driftRate x days / 30) uniform random times the strongest dominant topic
 * is replaced by another one (drawn by topic popularity). The clicks follow the taste at their
 * time, so {@link SyntheticTruth.tasteAt} is the exact law they were drawn from.
 */

/** Ground truth of one item. Topics and lines are indices into {@link SyntheticTruth}. */
export interface SyntheticItemTruth {
  readonly itemId: string;
  readonly topic: number;
  /** The topic a word of its text comes from, for items that mix two. */
  readonly secondaryTopic?: number;
  readonly line: number;
  /** Position in its product line: 0 = starter, then refill, upgrade, ... */
  readonly stage: number;
  /** Epoch ms; the start of the timeline for items that exist from the start. */
  readonly introducedAt: number;
  /** Base popularity weight within its topic (before the boost of new items). */
  readonly popularity: number;
}

/** A product line: items of one topic and brand, in stage order. */
export interface SyntheticLineTruth {
  readonly topic: number;
  readonly brand: string;
  readonly itemIds: readonly string[];
}

/** A dominant topic of a user replaced by another one at `ts`. */
export interface TasteSwitch {
  readonly ts: number;
  /** Which dominant slot changed (index into `dominantTopics`). */
  readonly slot: number;
  readonly from: number;
  readonly to: number;
}

/** Ground truth of one user's taste; read it with {@link SyntheticTruth.tasteAt}. */
export interface SyntheticUserTruth {
  readonly userId: string;
  /** Dominant topics at the start of the timeline (1-3). */
  readonly dominantTopics: readonly number[];
  /** Switches of dominant topics, in time order (none when driftRate is 0). */
  readonly switches: readonly TasteSwitch[];
  /** Log-weights of the dominant slots at each knot: [knots, dominantTopics.length] row-major. */
  readonly slotLogWeights: Float64Array;
}

export interface SyntheticTruth {
  readonly options: ResolvedSyntheticOptions;
  /** Timeline [start, end), epoch ms. */
  readonly start: number;
  readonly end: number;
  /** The topics of this world (the first `options.topics` built-in ones). */
  readonly topics: readonly SyntheticTopic[];
  /** Share of the taste every user spreads over all topics, by topic popularity: [topics]. */
  readonly background: Float64Array;
  readonly items: readonly SyntheticItemTruth[];
  readonly lines: readonly SyntheticLineTruth[];
  readonly users: readonly SyntheticUserTruth[];
  /** Taste knots: knot k holds on [start + k * knotMs, start + (k + 1) * knotMs). */
  readonly knots: number;
  readonly knotMs: number;
  /** A user's taste over topics at `ts` (sums to 1): [topics]. Clamped to the timeline. */
  tasteAt(userId: string, ts: number): Float64Array;
}

export interface SyntheticWorld {
  readonly dataset: LoadedDataset;
  readonly truth: SyntheticTruth;
}

const DAY_MS = 86_400_000;
const MONTH_MS = 30 * DAY_MS;
const MAX_KNOTS = 256;
const BACKGROUND = 0.05;
const WALK_STD = 1.2;

/** Generates the synthetic world: the dataset (name `synthetic`, `click` events) and its ground truth. */
export function generateSyntheticWorld(options: SyntheticOptions = {}): SyntheticWorld {
  const o = resolveSyntheticOptions(options);
  const rng = new Random(o.seed);
  const catalogRng = rng.fork();
  const userRng = rng.fork();
  const start = o.start;
  const end = start + Math.round(o.days * DAY_MS);
  const catalog = buildSyntheticCatalog(o, start, end, catalogRng);
  const knots = Math.min(MAX_KNOTS, Math.max(1, Math.ceil(o.days)));
  const knotMs = (end - start) / knots;
  const userIds = ids('u', o.users);

  const users: SyntheticUserTruth[] = [];
  const sequences: UserSequence[] = [];
  const sampler = new ItemSampler(start, catalog.items, o.topics);
  const clicked = new Uint8Array(catalog.items.length); // of the current user; cleared after each
  for (let u = 0; u < o.users; u++) {
    const r = userRng.fork();
    const user = drawTaste(userIds[u]!, o, catalog.topicWeights, start, end, knots, r);
    users.push(user);
    const taste = (ts: number): Float64Array => tasteOf(user, catalog.background, start, knotMs, knots, ts);
    sequences.push(drawClicks(user.userId, o, start, end, taste, sampler, catalog, clicked, r));
  }

  const byUser = new Map(users.map((u) => [u.userId, u]));
  const truth: SyntheticTruth = {
    options: o,
    start,
    end,
    topics: catalog.topics,
    background: catalog.background,
    items: catalog.items,
    lines: catalog.lines,
    users,
    knots,
    knotMs,
    tasteAt(userId, ts) {
      const user = byUser.get(userId);
      if (!user) throw new RangeError(`tasteAt: unknown userId ${JSON.stringify(userId)}`);
      return tasteOf(user, catalog.background, start, knotMs, knots, ts);
    },
  };
  const items: ItemEvent[] = catalog.events;
  const dataset: LoadedDataset = {
    name: SYNTHETIC_NAME,
    dir: `builtin:${SYNTHETIC_NAME}`,
    items,
    sequences,
    eventType: 'click',
    timestampRule:
      `generated: synthetic world (seed ${o.seed}), timeline ${new Date(start).toISOString()} + ${o.days} days; each user is active over a ` +
      'random span, clicks in sessions (20 s + exponential(3 min) apart, sessions at least an hour apart); items introduced mid-stream ' +
      'have their introduction time as catalog ts and no click before it',
  };
  return { dataset, truth };
}

/** Zero-padded ids `u0001`.. (at least four digits), so that string order is numeric order. */
function ids(prefix: string, n: number): string[] {
  const width = Math.max(4, String(n).length);
  return Array.from({ length: n }, (_, i) => `${prefix}${String(i + 1).padStart(width, '0')}`);
}

function poisson(mean: number, rng: Random): number {
  if (mean > 50) return Math.max(0, Math.round(mean + Math.sqrt(mean) * rng.normal()));
  const limit = Math.exp(-mean);
  let k = 0;
  let p = rng.next();
  while (p > limit) {
    k++;
    p *= rng.next();
  }
  return k;
}

function drawTaste(userId: string, o: ResolvedSyntheticOptions, topicWeights: Float64Array, start: number, end: number, knots: number, rng: Random): SyntheticUserTruth {
  const roll = rng.next();
  const slots = Math.min(roll < 0.25 ? 1 : roll < 0.7 ? 2 : 3, topicWeights.length - 1); // leave a topic to switch to
  const current: number[] = [];
  const available = Array.from(topicWeights);
  for (let s = 0; s < slots; s++) {
    const t = drawIndex(available, rng);
    current.push(t);
    available[t] = 0;
  }
  const dominantTopics = [...current];
  // Log-weights random-walk from a Dirichlet-like start (log of Gamma(2)-ish draws). [knots, slots]
  const slotLogWeights = new Float64Array(knots * slots);
  const step = WALK_STD * o.driftRate * Math.sqrt((end - start) / knots / MONTH_MS);
  for (let s = 0; s < slots; s++) slotLogWeights[s] = Math.log(rng.exponential(1) + rng.exponential(1));
  for (let k = 1; k < knots; k++) {
    for (let s = 0; s < slots; s++) slotLogWeights[k * slots + s] = (slotLogWeights[(k - 1) * slots + s] as number) + step * rng.normal();
  }
  const times = Array.from({ length: poisson((o.driftRate * (end - start)) / MONTH_MS, rng) }, () => start + rng.next() * (end - start)).sort((a, b) => a - b);
  const switches: TasteSwitch[] = [];
  const knotMs = (end - start) / knots;
  for (const ts of times) {
    const k = Math.min(knots - 1, Math.floor((ts - start) / knotMs));
    let slot = 0; // the strongest dominant topic fades
    for (let s = 1; s < slots; s++) if ((slotLogWeights[k * slots + s] as number) > (slotLogWeights[k * slots + slot] as number)) slot = s;
    const others = Array.from(topicWeights, (x, t) => (current.includes(t) ? 0 : x));
    const to = drawIndex(others, rng);
    switches.push({ ts: Math.round(ts), slot, from: current[slot]!, to });
    current[slot] = to;
  }
  return { userId, dominantTopics, switches, slotLogWeights };
}

function tasteOf(user: SyntheticUserTruth, background: Float64Array, start: number, knotMs: number, knots: number, ts: number): Float64Array {
  const taste = new Float64Array(background.length);
  for (let t = 0; t < taste.length; t++) taste[t] = BACKGROUND * (background[t] as number);
  const slots = user.dominantTopics.length;
  const topics = [...user.dominantTopics];
  for (const s of user.switches) if (s.ts <= ts) topics[s.slot] = s.to;
  const k = Math.max(0, Math.min(knots - 1, Math.floor((ts - start) / knotMs)));
  let max = -Infinity;
  for (let s = 0; s < slots; s++) max = Math.max(max, user.slotLogWeights[k * slots + s] as number);
  const w = Array.from({ length: slots }, (_, s) => Math.exp((user.slotLogWeights[k * slots + s] as number) - max));
  const total = w.reduce((a, b) => a + b, 0);
  for (let s = 0; s < slots; s++) taste[topics[s]!] = (taste[topics[s]!] as number) + ((1 - BACKGROUND) * w[s]!) / total;
  return taste;
}
