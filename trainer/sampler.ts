import type { Random } from '../random';

/**
 * Negative items for the sampled-softmax recommendation loss, as the reference's `encode_item`
 * draws them: one set shared by the whole batch, `count` distinct items drawn uniformly from
 * `1..itemCount` without the batch's positives and never padding (0). When fewer than `count`
 * items are left, all of them are returned (in random order).
 */
export function sampleNegatives(itemCount: number, positives: ArrayLike<number>, count: number, rng: Random): Int32Array {
  const excluded = new Uint8Array(itemCount + 1);
  excluded[0] = 1;
  let excludedCount = 0;
  for (let i = 0; i < positives.length; i++) {
    const p = positives[i] as number;
    if (p >= 1 && p <= itemCount && excluded[p] === 0) {
      excluded[p] = 1;
      excludedCount++;
    }
  }
  const available = itemCount - excludedCount;
  const n = Math.max(0, Math.min(count, available));
  const out = new Int32Array(n);
  if (n * 2 <= available) {
    // Sparse draw: rejection sampling, marking each drawn item as excluded.
    for (let k = 0; k < n; ) {
      const item = 1 + rng.int(itemCount);
      if (excluded[item] === 1) continue;
      excluded[item] = 1;
      out[k++] = item;
    }
    return out;
  }
  // Dense draw: partial Fisher-Yates over the allowed items.
  const pool = new Int32Array(available);
  for (let item = 1, j = 0; item <= itemCount; item++) if (excluded[item] === 0) pool[j++] = item;
  for (let k = 0; k < n; k++) {
    const j = k + rng.int(available - k);
    const tmp = pool[k] as number;
    pool[k] = pool[j] as number;
    pool[j] = tmp;
    out[k] = pool[k] as number;
  }
  return out;
}
