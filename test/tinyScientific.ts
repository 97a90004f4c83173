import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { Random } from '../random';

/**
 * Writes a small dataset in the Amazon Scientific layout (`<name>.{train,valid,test}.inter`,
 * `.text`, `.item2index`, `.user2index`) for command-line tests: `items` items whose texts share
 * words by group, and users who mostly walk to the next item of the same group.
 */
export function writeTinyScientific(dir: string, options: { name?: string; items?: number; users?: number; length?: number; seed?: number } = {}): string {
  const name = options.name ?? 'Tiny';
  const items = options.items ?? 60;
  const users = options.users ?? 120;
  const length = options.length ?? 8;
  const rng = new Random(options.seed ?? 11);
  const words = ['lamp', 'glove', 'sensor', 'valve', 'resistor', 'beaker'];
  const colors = ['red', 'blue', 'green', 'black', 'white'];
  const texts = Array.from({ length: items }, (_, i) => `${words[i % words.length]} ${colors[i % colors.length]} kit model${i}. Industrial & Scientific ${words[i % words.length]} supplies. Brand${i % 4}. `);
  const header = 'user_id:token\titem_id_list:token_seq\titem_id:token';
  const train = [header];
  const valid = [header];
  const test = [header];
  for (let u = 0; u < users; u++) {
    const seq = [rng.int(items)];
    while (seq.length < length) {
      const prev = seq[seq.length - 1] as number;
      seq.push(rng.next() < 0.8 ? (prev + words.length) % items : rng.int(items));
    }
    // Every prefix, the longest first (as the shipped files order them).
    for (let t = length - 3; t >= 1; t--) train.push(`${u}\t${seq.slice(0, t).join(' ')}\t${seq[t]}`);
    valid.push(`${u}\t${seq.slice(0, length - 2).join(' ')}\t${seq[length - 2]}`);
    test.push(`${u}\t${seq.slice(0, length - 1).join(' ')}\t${seq[length - 1]}`);
  }
  const file = (suffix: string, lines: string[]): void => writeFileSync(path.join(dir, `${name}.${suffix}`), `${lines.join('\n')}\n`);
  file('train.inter', train);
  file('valid.inter', valid);
  file('test.inter', test);
  file('text', ['item_id:token\ttext:token_seq', ...texts.map((t, i) => `ITEM${i}\t${t}`)]);
  file('item2index', texts.map((_, i) => `ITEM${i}\t${i}`));
  file('user2index', Array.from({ length: users }, (_, u) => `USER${u}\t${u}`));
  return dir;
}

/**
 * Stores under `root` and small feature, quantizer and model settings for the tiny dataset: a
 * rebuild and a training run take a few seconds (`epochs` of training, 1 by default).
 */
export function tinyStoresConfig(root: string, epochs = 1) {
  return {
    artifacts: { dir: path.join(root, 'artifacts'), registryFile: path.join(root, 'artifacts', 'item-registry.json') },
    features: { encoder: 'tfidf-lsa' as const, pcaDims: 8, tfidfLsa: { minDf: 1 } },
    quantizer: { levels: 2, codesPerLevel: 8 },
    trainer: { model: { embeddingSize: 8, innerSize: 16, nLayers: 1, nHeads: 2, maxHistoryLength: 8 }, train: { epochs, batchSize: 64, warmupSteps: 5 } },
  };
}
