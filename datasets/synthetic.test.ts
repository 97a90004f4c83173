import fs from 'node:fs';
import { DatasetError } from '../errors';
import { Random } from '../random';
import { datasetEvents, generateSyntheticWorld, interactionCount, loadDataset, parseSyntheticSpec, type SyntheticWorld } from './index';
import { GENERIC_WORDS, LINE_STAGES } from './syntheticVocabulary';

const world = generateSyntheticWorld();
const still = generateSyntheticWorld({ driftRate: 0 });
const small = { users: 60, items: 200, seed: 5 };

/** Everything but the tasteAt function, for equality checks. */
function plain({ dataset, truth }: SyntheticWorld): unknown {
  const { tasteAt: _, ...data } = truth;
  return { dataset, truth: data };
}

function topicOf({ truth }: SyntheticWorld): Map<string, { topic: number; line: number }> {
  return new Map(truth.items.map((i) => [i.itemId, i]));
}

function words(text: string): string[] {
  return text.toLowerCase().split(/\s+/);
}

/** Mean total-variation distance between the topic mix of each user's first and last third of clicks. */
function meanFirstLastTv(w: SyntheticWorld): number {
  const items = topicOf(w);
  let total = 0;
  for (const s of w.dataset.sequences) {
    const third = Math.floor(s.itemIds.length / 3);
    const mix = (ids: string[]): Float64Array => {
      const d = new Float64Array(w.truth.topics.length);
      for (const id of ids) d[items.get(id)!.topic]! += 1 / ids.length;
      return d;
    };
    const first = mix(s.itemIds.slice(0, third));
    const last = mix(s.itemIds.slice(-third));
    total += first.reduce((acc, x, k) => acc + Math.abs(x - last[k]!), 0) / 2;
  }
  return total / w.dataset.sequences.length;
}

describe('synthetic world', () => {
  it('is a function of its options: the same seed gives the same world, another seed another', () => {
    expect(plain(generateSyntheticWorld(small))).toEqual(plain(generateSyntheticWorld(small)));
    const other = generateSyntheticWorld({ ...small, seed: 6 });
    expect(other.dataset.items.map((i) => i.title)).not.toEqual(generateSyntheticWorld(small).dataset.items.map((i) => i.title));
    expect(other.dataset.sequences[0]!.itemIds).not.toEqual(generateSyntheticWorld(small).dataset.sequences[0]!.itemIds);
  });

  it('stays valid at the edges: two topics, two items per topic, strong drift, the minimum of clicks', () => {
    const { dataset, truth } = generateSyntheticWorld({ topics: 2, items: 4, users: 30, driftRate: 5, meanEventsPerUser: 5, newItemFraction: 0.9 });
    expect(dataset.sequences.map((s) => s.itemIds.length)).toEqual(new Array(30).fill(5));
    expect(truth.items.filter((i) => i.introducedAt > truth.start)).toHaveLength(2); // one item per topic stays from the start
    expect(truth.users.every((u) => u.dominantTopics.length === 1 && u.switches.every((s) => s.from !== s.to))).toBe(true);
    expect(truth.users.reduce((n, u) => n + u.switches.length, 0)).toBeGreaterThan(30);
    const introduced = new Map(dataset.items.map((i) => [i.itemId, i.ts]));
    expect(dataset.sequences.every((s) => s.itemIds.every((id, i) => introduced.get(id)! <= s.timestamps[i]!))).toBe(true);
  });

  it('has the default size, at least 5 clicks per user, time-ordered users that overlap in time, and known unique ids', () => {
    const { dataset, truth } = world;
    expect(dataset).toMatchObject({ name: 'synthetic', eventType: 'click' });
    expect(dataset.timestampRule).toMatch(/^generated/);
    expect(dataset.sequences).toHaveLength(1000);
    expect(dataset.items).toHaveLength(1200);
    expect(new Set(dataset.items.map((i) => i.itemId)).size).toBe(1200);
    expect(new Set(dataset.sequences.map((s) => s.userId)).size).toBe(1000);
    expect(interactionCount(dataset) / 1000).toBeGreaterThan(22);
    expect(interactionCount(dataset) / 1000).toBeLessThan(26);
    expect(dataset.sequences.filter((s) => s.itemIds.length < 5 || s.timestamps.length !== s.itemIds.length)).toEqual([]);
    expect(dataset.sequences.filter((s) => s.timestamps.some((t, i) => i > 0 && t < s.timestamps[i - 1]!))).toEqual([]);
    const introduced = new Map(dataset.items.map((i) => [i.itemId, i.ts]));
    const early = dataset.sequences.flatMap((s) => s.itemIds.filter((id, i) => !(introduced.get(id)! <= s.timestamps[i]!)));
    expect(early).toEqual([]); // also catches ids missing from the catalog
    const all = dataset.sequences.flatMap((s) => s.timestamps);
    expect(Math.min(...all)).toBeGreaterThanOrEqual(truth.start);
    expect(Math.max(...all)).toBeLessThan(truth.end);
    // Users interleave: half of them are active on both sides of the middle of the timeline.
    const middle = (truth.start + truth.end) / 2;
    expect(dataset.sequences.filter((s) => s.timestamps[0]! < middle && s.timestamps.at(-1)! > middle).length).toBeGreaterThan(500);
  });

  it('introduces 10% of the items mid-stream, with their introduction time as catalog ts, and they get clicked', () => {
    const { dataset, truth } = world;
    const late = truth.items.filter((i) => i.introducedAt > truth.start);
    expect(late).toHaveLength(120);
    expect(dataset.items.filter((i) => i.ts > truth.start)).toHaveLength(120);
    expect(dataset.items.every((e, i) => i === 0 || e.ts >= dataset.items[i - 1]!.ts)).toBe(true);
    const byId = new Map(dataset.items.map((e) => [e.itemId, e]));
    expect(late.every((i) => byId.get(i.itemId)!.ts === i.introducedAt)).toBe(true);
    const clicked = new Set(dataset.sequences.flatMap((s) => s.itemIds));
    expect(late.filter((i) => clicked.has(i.itemId)).length).toBeGreaterThan(100);
    // Replay: catalog first, then interactions in global time order.
    const times = [...datasetEvents(dataset)].filter((e) => e.kind === 'interaction').map((e) => e.event.ts);
    expect(times.every((t, i) => i === 0 || t >= times[i - 1]!)).toBe(true);
  });

  it('writes titles of 3-7 words mostly from the item topic vocabulary, with its categories and one of its brands', () => {
    const { dataset, truth } = world;
    const shared = new Set([...GENERIC_WORDS, ...LINE_STAGES, 'with']);
    const byId = new Map(truth.items.map((i) => [i.itemId, i]));
    let own = 0;
    let total = 0;
    for (const event of dataset.items) {
      const item = byId.get(event.itemId)!;
      const topic = truth.topics[item.topic]!;
      const vocabulary = new Set([...topic.nouns, ...topic.adjectives]);
      const secondary = item.secondaryTopic === undefined ? new Set<string>() : new Set(truth.topics[item.secondaryTopic]!.nouns);
      const title = words(event.title!);
      expect(title.length).toBeGreaterThanOrEqual(3);
      expect(title.length).toBeLessThanOrEqual(7);
      expect(title.filter((w) => !vocabulary.has(w) && !shared.has(w) && !secondary.has(w))).toEqual([]);
      expect(title.filter((w) => vocabulary.has(w)).length).toBeGreaterThanOrEqual(2);
      own += title.filter((w) => vocabulary.has(w)).length;
      total += title.length;
      expect(event.categories).toEqual(topic.categories);
      expect(topic.brands).toContain(event.brand);
      if (event.description !== undefined) expect(event.description).toContain(topic.name);
    }
    expect(own / total).toBeGreaterThan(0.5);
    expect(truth.items.filter((i) => i.secondaryTopic !== undefined).length).toBeGreaterThan(100);
    expect(dataset.items.filter((e) => e.description !== undefined).length).toBeGreaterThan(600);
  });

  it('gives items of one topic more title words in common than items of different topics', () => {
    const { dataset, truth } = world;
    const topics = new Map(truth.items.map((i) => [i.itemId, i.topic]));
    const sets = dataset.items.map((e) => ({ topic: topics.get(e.itemId)!, words: new Set(words(e.title!)) }));
    const mean = { same: [0, 0], other: [0, 0] };
    const rng = new Random(1);
    for (let n = 0; n < 20_000; n++) {
      const a = sets[rng.int(sets.length)]!;
      const b = sets[rng.int(sets.length)]!;
      if (a === b) continue;
      const common = [...a.words].filter((w) => b.words.has(w)).length;
      const jaccard = common / (a.words.size + b.words.size - common);
      const bucket = a.topic === b.topic ? mean.same : mean.other;
      bucket[0]! += jaccard;
      bucket[1]! += 1;
    }
    const same = mean.same[0]! / mean.same[1]!;
    const other = mean.other[0]! / mean.other[1]!;
    expect(same).toBeGreaterThan(1.5 * other); // about 0.08 vs 0.04; stage and generic words are shared by all
  });

  it('drifts: first and last thirds of a user differ much more with drift than with driftRate 0', () => {
    expect(still.truth.users.every((u) => u.switches.length === 0)).toBe(true);
    expect(world.truth.users.filter((u) => u.switches.length > 0).length).toBeGreaterThan(500);
    const user = still.truth.users[0]!.userId;
    expect(still.truth.tasteAt(user, still.truth.start)).toEqual(still.truth.tasteAt(user, still.truth.end - 1));
    const drifting = meanFirstLastTv(world);
    const steady = meanFirstLastTv(still);
    expect(drifting - steady).toBeGreaterThan(0.08);
  });

  it('has ground truth that agrees with the clicks: tastes sum to 1 and switch at the recorded times', () => {
    const { truth } = world;
    const user = truth.users.find((u) => u.switches.length > 0)!;
    const { ts, to } = user.switches[0]!;
    const before = truth.tasteAt(user.userId, ts - 1);
    const after = truth.tasteAt(user.userId, ts);
    expect(before.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 9);
    expect(after.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 9);
    expect(after[to]!).toBeGreaterThan(before[to]! + 0.05);
    expect(() => truth.tasteAt('nobody', ts)).toThrow(/unknown userId "nobody"/);
    for (const line of truth.lines) {
      expect(line.itemIds.map((id) => truth.items.find((i) => i.itemId === id)!.topic).every((t) => t === line.topic)).toBe(true);
    }
    expect(truth.lines.reduce((n, l) => n + l.itemIds.length, 0)).toBe(1200);
  });

  it('has sequential structure: consecutive clicks share a line and a topic far more often than the taste mix explains', () => {
    const { dataset, truth } = world;
    const items = topicOf(world);
    const rng = new Random(3);
    let pairs = 0;
    let sameLine = 0;
    let sameTopic = 0;
    let shuffledLine = 0;
    let chanceTopic = 0;
    for (const s of dataset.sequences) {
      const shuffled = rng.shuffle([...s.itemIds]);
      for (let i = 1; i < s.itemIds.length; i++) {
        const a = items.get(s.itemIds[i - 1]!)!;
        const b = items.get(s.itemIds[i]!)!;
        pairs++;
        if (a.line === b.line) sameLine++;
        if (a.topic === b.topic) sameTopic++;
        if (items.get(shuffled[i - 1]!)!.line === items.get(shuffled[i]!)!.line) shuffledLine++;
        chanceTopic += truth.tasteAt(s.userId, s.timestamps[i]!).reduce((acc, p) => acc + p * p, 0);
      }
    }
    expect(sameLine / pairs).toBeGreaterThan(0.25);
    expect(sameLine).toBeGreaterThan(4 * shuffledLine);
    expect(sameTopic / pairs).toBeGreaterThan(chanceTopic / pairs + 0.1);
  });
});

describe('loadDataset("synthetic...")', () => {
  it('builds the default world without touching the filesystem', async () => {
    const spies = [jest.spyOn(fs, 'existsSync'), jest.spyOn(fs, 'readdirSync'), jest.spyOn(fs, 'statSync')];
    try {
      const dataset = await loadDataset('synthetic');
      expect(dataset).toEqual(world.dataset);
      for (const spy of spies) expect(spy).not.toHaveBeenCalled();
      await expect(loadDataset('no-such-dataset')).rejects.toThrow(DatasetError);
      expect(spies[0]).toHaveBeenCalled(); // the spies do see the reader's calls
    } finally {
      for (const spy of spies) spy.mockRestore();
    }
  });

  it('takes options after a colon', async () => {
    const dataset = await loadDataset('synthetic:users=50,items=100,seed=3,newItemFraction=0,driftRate=0');
    expect(dataset.sequences).toHaveLength(50);
    expect(dataset.items).toHaveLength(100);
    expect(dataset.items.every((i) => i.ts === dataset.items[0]!.ts)).toBe(true);
    expect(dataset).toEqual(generateSyntheticWorld({ users: 50, items: 100, seed: 3, newItemFraction: 0, driftRate: 0 }).dataset);
    expect(parseSyntheticSpec('synthetic:').users).toBe(1000);
  });

  it.each([
    ['synthetic:user=5', /unknown option "user"; expected one of seed, users, items/],
    ['synthetic:users=abc', /option users expects a number, got "abc"/],
    ['synthetic:users=', /option users expects a number, got ""/],
    ['synthetic:users=0', /option users \(Number of users\): .*>=1, got 0/],
    ['synthetic:users=2.5', /option users \(Number of users\): .*expected int.*got 2.5/],
    ['synthetic:newItemFraction=1.5', /option newItemFraction \(.*\): .*<=0\.9, got 1.5/],
    ['synthetic:meanEventsPerUser=3', /option meanEventsPerUser \(.*\): expected at least minEventsPerUser \(5\), got 3$/],
    ['synthetic:items=10', /option items \(.*\): expected at least 2 items per topic \(32 for 16 topics\), got 10/],
    ['synthetic:users', /expected key=value, got "users"/],
    ['synthetic:seed=1,seed=2', /option seed given twice/],
  ])('rejects %s with a DatasetError naming the key', async (spec, message) => {
    await expect(loadDataset(spec)).rejects.toThrow(DatasetError);
    await expect(loadDataset(spec)).rejects.toThrow(message);
  });

  it('rejects unknown keys passed to the generator, and names synthetic when a dataset is not found', async () => {
    expect(() => generateSyntheticWorld({ userz: 5 } as never)).toThrow(/unknown option "userz"/);
    await expect(loadDataset('no-such-dataset')).rejects.toThrow(/built-in world "synthetic"/);
  });
});
