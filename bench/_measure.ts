import type { UserEncoder } from '../serving';
import type { SequenceBatch } from '../trainer';

/** The value at quantile `p` of ascending `sorted` (NaN when empty). */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  return sorted.length === 0 ? Number.NaN : (sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] as number);
}

/** User vectors/s over `seconds` (after `warmUp` calls), cycling through `batches`. */
export async function throughput(engine: UserEncoder, batches: readonly SequenceBatch[], seconds: number, warmUp = 3): Promise<number> {
  for (const b of batches.slice(0, warmUp)) await engine.encode(b);
  let vectors = 0;
  const started = performance.now();
  for (let i = 0; (performance.now() - started) / 1000 < seconds; i++) {
    const b = batches[i % batches.length] as SequenceBatch;
    await engine.encode(b);
    vectors += b.size;
  }
  return vectors / ((performance.now() - started) / 1000);
}
