import type { IngestTotals } from './processor';

/** What an ingest runtime has done up to a moment: its totals and, where known, its consumer lag. */
export interface ProgressSample {
  /** When the sample was taken (epoch ms). */
  readonly at: number;
  readonly totals: Readonly<Pick<IngestTotals, 'messages' | 'accepted' | 'deadLetters' | 'flushes'> & Partial<Pick<IngestTotals, 'lostToRetention'>>>;
  /** Messages behind, summed over the owned partitions; undefined before the first batch or without Kafka. */
  readonly lag: number | undefined;
  readonly users: number;
}

/** One progress line: rates over the interval between two samples, and the state at the second. */
export interface ProgressSummary {
  readonly intervalS: number;
  readonly messagesPerS: number;
  readonly acceptedPerS: number;
  readonly deadLetters: number;
  readonly flushes: number;
  readonly lag: number | null;
  readonly users: number;
  readonly totalMessages: number;
  /** Messages the broker deleted before they were read, since the start (a loss an operator must see). */
  readonly lostToRetention: number;
}

/**
 * Rates between two samples of the same runtime (`next` later than `prev`): what `streamrec
 * ingest` logs every `--progress-ms`, so that an operator without Prometheus sees throughput, dead
 * letters and lag at a glance.
 */
export function progressSummary(prev: ProgressSample, next: ProgressSample): ProgressSummary {
  const seconds = (next.at - prev.at) / 1000;
  if (!(seconds > 0)) throw new RangeError(`progressSummary: the second sample must be later than the first (got ${seconds} s between them)`);
  const rate = (a: number, b: number): number => Math.round((b - a) / seconds);
  return {
    intervalS: Number(seconds.toFixed(1)),
    messagesPerS: rate(prev.totals.messages, next.totals.messages),
    acceptedPerS: rate(prev.totals.accepted, next.totals.accepted),
    deadLetters: next.totals.deadLetters - prev.totals.deadLetters,
    flushes: next.totals.flushes - prev.totals.flushes,
    lag: next.lag ?? null,
    users: next.users,
    totalMessages: next.totals.messages,
    lostToRetention: next.totals.lostToRetention ?? 0,
  };
}
