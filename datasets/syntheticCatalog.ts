import type { Random } from '../random';
import type { ItemEvent } from '../schemas/events';
import type { SyntheticItemTruth, SyntheticLineTruth } from './synthetic';
import type { ResolvedSyntheticOptions } from './syntheticOptions';
import { AUDIENCE_WORDS, GENERIC_WORDS, LINE_STAGES, SYNTHETIC_TOPICS, type SyntheticTopic } from './syntheticVocabulary';

/**
 * The catalog of the synthetic world: items split evenly over the topics, grouped per topic into
 * product lines of 2-5 items (one brand, one adjective + noun core, stages starter, refill,
 * upgrade, ...). A title is the core, sometimes a second noun of the topic, the stage word,
 * sometimes a generic word, and for `secondaryTopicFraction` of the items "with" + a noun of
 * another topic: 3-7 words. Popularity is Zipf over the lines of a topic (random order, exponent
 * `zipfExponent`) times 0.6^stage. Item ids are handed out in a shuffled order so that they do
 * not give the topic away.
 */
export interface SyntheticCatalog {
  readonly start: number;
  readonly topics: readonly SyntheticTopic[];
  /** How often users pick each topic as a dominant one (mildly skewed): [topics]. */
  readonly topicWeights: Float64Array;
  /** topicWeights normalised to sum 1: [topics]. */
  readonly background: Float64Array;
  /** Ordered by itemId. */
  readonly items: SyntheticItemTruth[];
  readonly lines: SyntheticLineTruth[];
  /** Indices into `items` of each line's items, in stage order. */
  readonly lineItems: number[][];
  /** Catalog events ordered by (ts, itemId): the items from the start first, then those introduced later. */
  readonly events: ItemEvent[];
}

interface ItemSpec {
  topic: number;
  secondaryTopic?: number;
  line: number;
  stage: number;
  popularity: number;
  introducedAt: number;
  event: Omit<ItemEvent, 'itemId' | 'ts'>;
}

const TOPIC_SKEW = 0.6;
const STAGE_DECAY = 0.6;

function pick<T>(list: readonly T[], rng: Random): T {
  return list[rng.int(list.length)] as T;
}

function capitalize(word: string): string {
  return word === 'with' ? word : word.charAt(0).toUpperCase() + word.slice(1);
}

export function buildSyntheticCatalog(o: ResolvedSyntheticOptions, start: number, end: number, rng: Random): SyntheticCatalog {
  const topics = SYNTHETIC_TOPICS.slice(0, o.topics);
  const topicOrder = rng.shuffle(topics.map((_, t) => t));
  const topicWeights = new Float64Array(topics.length);
  topicOrder.forEach((t, rank) => (topicWeights[t] = 1 / (rank + 1) ** TOPIC_SKEW));
  const weightSum = topicWeights.reduce((a, b) => a + b, 0);
  const background = topicWeights.map((w) => w / weightSum);

  const specs: ItemSpec[] = [];
  const lineSpecs: Array<{ topic: number; brand: string; members: number[] }> = [];
  const keepFromStart = new Set<number>(); // one item per topic, so every topic has items from the start
  for (let t = 0; t < topics.length; t++) {
    const topic = topics[t]!;
    let left = Math.floor(o.items / topics.length) + (t < o.items % topics.length ? 1 : 0);
    const sizes: number[] = [];
    while (left > 0) {
      let size = Math.min(left, 2 + rng.int(3));
      if (left - size === 1) size++;
      sizes.push(size);
      left -= size;
    }
    const lineRanks = rng.shuffle(sizes.map((_, i) => i));
    const cores = rng.shuffle(topic.adjectives.flatMap((adjective) => topic.nouns.map((noun) => [adjective, noun] as const)));
    sizes.forEach((size, l) => {
      const [adjective, noun] = cores[l % cores.length]!;
      const brand = pick(topic.brands, rng);
      const lineWeight = 1 / (lineRanks[l]! + 1) ** o.zipfExponent;
      const members: number[] = [];
      for (let stage = 0; stage < size; stage++) {
        if (lineRanks[l] === 0 && stage === 0) keepFromStart.add(specs.length);
        members.push(specs.length);
        specs.push(itemSpec(topics, t, lineSpecs.length, stage, adjective, noun, brand, lineWeight * STAGE_DECAY ** stage, o, rng));
      }
      lineSpecs.push({ topic: t, brand, members });
    });
  }

  // Items introduced mid-stream: uniform over 10%..90% of the timeline; the others exist from the start.
  for (const s of specs) s.introducedAt = start;
  const candidates = rng.shuffle(specs.map((_, i) => i).filter((i) => !keepFromStart.has(i)));
  const late = candidates.slice(0, Math.min(candidates.length, Math.round(o.newItemFraction * specs.length)));
  for (const i of late) specs[i]!.introducedAt = Math.round(start + (0.1 + 0.8 * rng.next()) * (end - start));

  // Shuffled ids: spec j becomes item position[j]; items are ordered by id.
  const width = Math.max(4, String(specs.length).length);
  const position = rng.shuffle(specs.map((_, i) => i));
  const itemId = (p: number): string => `i${String(p + 1).padStart(width, '0')}`;
  const items = new Array<SyntheticItemTruth>(specs.length);
  const events = new Array<ItemEvent>(specs.length);
  specs.forEach((s, j) => {
    const p = position[j]!;
    items[p] = {
      itemId: itemId(p),
      topic: s.topic,
      ...(s.secondaryTopic !== undefined ? { secondaryTopic: s.secondaryTopic } : {}),
      line: s.line,
      stage: s.stage,
      introducedAt: s.introducedAt,
      popularity: s.popularity,
    };
    events[p] = { itemId: itemId(p), ts: s.introducedAt, ...s.event };
  });
  events.sort((a, b) => a.ts - b.ts || (a.itemId < b.itemId ? -1 : 1));
  const lineItems = lineSpecs.map((l) => l.members.map((j) => position[j]!));
  const lines = lineSpecs.map((l, i) => ({ topic: l.topic, brand: l.brand, itemIds: lineItems[i]!.map(itemId) }));
  return { start, topics, topicWeights, background, items, lines, lineItems, events };
}

function itemSpec(
  topics: readonly SyntheticTopic[],
  t: number,
  line: number,
  stage: number,
  adjective: string,
  noun: string,
  brand: string,
  popularity: number,
  o: ResolvedSyntheticOptions,
  rng: Random,
): ItemSpec {
  const topic = topics[t]!;
  const stageWord = LINE_STAGES[Math.min(stage, LINE_STAGES.length - 1)]!;
  const words = [adjective];
  if (rng.next() < 0.5) words.push(pick(topic.nouns.filter((n) => n !== noun), rng));
  words.push(noun, stageWord);
  if (rng.next() < 0.5) words.push(pick(GENERIC_WORDS, rng));
  let secondaryTopic: number | undefined;
  let secondaryNoun: string | undefined;
  if (topics.length > 1 && rng.next() < o.secondaryTopicFraction) {
    secondaryTopic = (t + 1 + rng.int(topics.length - 1)) % topics.length;
    secondaryNoun = pick(topics[secondaryTopic]!.nouns, rng);
    words.push('with', secondaryNoun);
  }
  let description: string | undefined;
  if (rng.next() < o.descriptionFraction) {
    const other = pick(topic.adjectives.filter((a) => a !== adjective), rng);
    description = `${/^[aeiou]/.test(other) ? 'An' : 'A'} ${other} ${noun} ${stageWord} for ${topic.name} ${pick(AUDIENCE_WORDS, rng)}.`;
    if (secondaryNoun !== undefined) description += ` Works with any ${secondaryNoun}.`;
  }
  return {
    topic: t,
    ...(secondaryTopic !== undefined ? { secondaryTopic } : {}),
    line,
    stage,
    popularity,
    introducedAt: Number.NaN, // set by the caller
    event: {
      title: words.map(capitalize).join(' '),
      brand,
      categories: [...topic.categories],
      ...(description !== undefined ? { description } : {}),
    },
  };
}
