import type { Random } from '../random';
import type { UserSequence } from './types';
import type { SyntheticItemTruth } from './synthetic';
import type { SyntheticCatalog } from './syntheticCatalog';
import type { ResolvedSyntheticOptions } from './syntheticOptions';

/**
 * The click model of the synthetic world (see synthetic.ts): how many clicks a user makes, when,
 * and on which items, given the user's taste over time.
 *
 * - Count: `minEventsPerUser` + lognormal (sigma 0.8) with the rest of `meanEventsPerUser`,
 *   capped at 10x the mean.
 * - Time: the user is active over a random span of the timeline (starting in its first 30%,
 *   covering 60-100% of what is left); clicks come in sessions (1 + exponential sizes, mean
 *   `meanSessionLength`) with 20 s + exponential(3 min) between clicks and at least an hour, mostly
 *   days, between sessions.
 * - Items: a session starts by continuing the product line of the user's last click (30%, when
 *   the line has an unclicked item) or on a topic drawn from the taste at that time. After a
 *   click: 45% the same line (its next stage 70% of the time), 40% the same topic, 15% a topic
 *   drawn from the taste. Items are drawn by popularity among items already introduced and not yet
 *   clicked by the user; an item introduced mid-stream gets up to 4x its weight, fading over about
 *   ten days.
 */

const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;
const P_RESUME_LINE = 0.3;
const P_SAME_LINE = 0.45;
const P_SAME_TOPIC = 0.4;
const P_NEXT_STAGE = 0.7;
const EVENT_SIGMA = 0.8;

/** Index drawn with probability proportional to `weights[i]` (all >= 0, some > 0). */
export function drawIndex(weights: ArrayLike<number>, rng: Random): number {
  let total = 0;
  for (let i = 0; i < weights.length; i++) total += weights[i] as number;
  let x = rng.next() * total;
  for (let i = 0; i < weights.length; i++) {
    x -= weights[i] as number;
    if (x < 0) return i;
  }
  for (let i = weights.length - 1; i >= 0; i--) if ((weights[i] as number) > 0) return i;
  return 0;
}

/** Draws items of one topic by popularity among those introduced by `ts`. */
export class ItemSampler {
  // Per topic, the items that can be drawn for it: its own, and at 0.3 x weight those that mix it in.
  private readonly items: Int32Array[] = [];
  private readonly weights: Float64Array[] = [];
  private readonly introducedAt: Float64Array[] = [];
  private readonly cumulative: Float64Array;

  constructor(
    private readonly start: number,
    catalogItems: readonly SyntheticItemTruth[],
    topics: number,
  ) {
    for (let t = 0; t < topics; t++) {
      const members: Array<[number, number]> = [];
      catalogItems.forEach((item, i) => {
        if (item.topic === t) members.push([i, item.popularity]);
        else if (item.secondaryTopic === t) members.push([i, 0.3 * item.popularity]);
      });
      this.items.push(Int32Array.from(members, ([i]) => i));
      this.weights.push(Float64Array.from(members, ([, w]) => w));
      this.introducedAt.push(Float64Array.from(members, ([i]) => catalogItems[i]!.introducedAt));
    }
    this.cumulative = new Float64Array(Math.max(...this.items.map((m) => m.length)));
  }

  /**
   * An item of `topic` introduced by `ts` and not yet clicked (`clicked[item]` = 1), or a clicked
   * one when all are; -1 when none is introduced yet.
   */
  draw(topic: number, ts: number, clicked: Uint8Array, rng: Random): number {
    const items = this.items[topic]!;
    const weights = this.weights[topic]!;
    const introducedAt = this.introducedAt[topic]!;
    const cumulative = this.cumulative;
    for (const allowRepeat of [false, true]) {
      let total = 0;
      for (let j = 0; j < items.length; j++) {
        const at = introducedAt[j]!;
        if (at <= ts && (allowRepeat || clicked[items[j]!] === 0)) {
          // New items get attention: up to 4x their weight, fading over about ten days.
          total += at > this.start ? weights[j]! * (1 + 3 * Math.exp(-(ts - at) / (10 * DAY_MS))) : weights[j]!;
        }
        cumulative[j] = total;
      }
      if (total > 0) {
        const x = rng.next() * total;
        let j = 0;
        while (j < items.length - 1 && cumulative[j]! <= x) j++;
        return items[j]!;
      }
    }
    return -1;
  }
}

/** One user's clicks, oldest first, drawn from `taste` (the user's taste over topics at a time). `clicked` is all 0 before and after. */
export function drawClicks(
  userId: string,
  o: Pick<ResolvedSyntheticOptions, 'meanEventsPerUser' | 'minEventsPerUser' | 'meanSessionLength'>,
  start: number,
  end: number,
  taste: (ts: number) => Float64Array,
  sampler: ItemSampler,
  catalog: SyntheticCatalog,
  clicked: Uint8Array,
  rng: Random,
): UserSequence {
  // How many clicks: minEventsPerUser + lognormal with the rest of the mean, capped at 10x the mean.
  const extra = o.meanEventsPerUser - o.minEventsPerUser;
  const mu = Math.log(Math.max(extra, 1e-9)) - (EVENT_SIGMA * EVENT_SIGMA) / 2;
  const count = Math.min(o.minEventsPerUser + (extra > 0 ? Math.round(Math.exp(mu + EVENT_SIGMA * rng.normal())) : 0), Math.max(o.minEventsPerUser, Math.round(10 * o.meanEventsPerUser)));
  const sessions: number[] = [];
  for (let left = count; left > 0; ) {
    const size = Math.min(left, 1 + Math.floor(rng.exponential(Math.max(o.meanSessionLength - 0.5, 1e-9))));
    sessions.push(size);
    left -= size;
  }
  // Offsets within sessions, then free time spread over the gaps before, between and after sessions.
  const within = sessions.map((n) => Array.from({ length: n }, (_, i) => (i === 0 ? 0 : 20_000 + rng.exponential(180_000))));
  const durations = within.map((gaps) => gaps.reduce((a, b) => a + b, 0));
  const spanStart = start + rng.next() * 0.3 * (end - start);
  const spanEnd = spanStart + (end - spanStart) * (0.6 + 0.4 * rng.next());
  const fixed = durations.reduce((a, b) => a + b, 0) + (sessions.length - 1) * HOUR_MS;
  const scale = fixed > spanEnd - spanStart ? (spanEnd - spanStart) / fixed : 1;
  const free = Math.max(0, spanEnd - spanStart - fixed);
  const shares = Array.from({ length: sessions.length + 1 }, () => rng.exponential(1));
  const shareTotal = shares.reduce((a, b) => a + b, 0);

  const itemIds: string[] = [];
  const timestamps: number[] = [];
  const drawn: number[] = [];
  let t = spanStart;
  let last = -1;
  for (let s = 0; s < sessions.length; s++) {
    t += (free * shares[s]!) / shareTotal + (s > 0 ? HOUR_MS * scale : 0);
    for (let i = 0; i < sessions[s]!; i++) {
      t += within[s]![i]! * scale;
      const ts = Math.min(Math.round(t), end - 1);
      const item = nextItem(last, i === 0, ts, taste, sampler, catalog, clicked, rng);
      clicked[item] = 1;
      drawn.push(item);
      itemIds.push(catalog.items[item]!.itemId);
      timestamps.push(Math.max(ts, timestamps[timestamps.length - 1] ?? ts));
      last = item;
    }
  }
  for (const item of drawn) clicked[item] = 0;
  return { userId, itemIds, timestamps };
}

function nextItem(last: number, sessionStart: boolean, ts: number, taste: (ts: number) => Float64Array, sampler: ItemSampler, catalog: SyntheticCatalog, clicked: Uint8Array, rng: Random): number {
  const r = rng.next();
  if (last >= 0) {
    const prev = catalog.items[last]!;
    if (sessionStart ? r < P_RESUME_LINE : r < P_SAME_LINE) {
      const line = catalog.lineItems[prev.line]!;
      const open = line.filter((i) => clicked[i] === 0 && catalog.items[i]!.introducedAt <= ts);
      if (open.length > 0) {
        const next = open.find((i) => catalog.items[i]!.stage === prev.stage + 1);
        return next !== undefined && rng.next() < P_NEXT_STAGE ? next : open[rng.int(open.length)]!;
      }
    } else if (!sessionStart && r < P_SAME_LINE + P_SAME_TOPIC) {
      const item = sampler.draw(prev.topic, ts, clicked, rng);
      if (item >= 0) return item;
    }
  }
  // A topic from the taste; every topic keeps an item from the start, so this ends.
  for (;;) {
    const item = sampler.draw(drawIndex(taste(ts), rng), ts, clicked, rng);
    if (item >= 0) return item;
  }
}
