import { progressSummary, type ProgressSample } from './progress';

const sample = (at: number, messages: number, accepted: number, deadLetters: number, flushes: number, lag: number | undefined, users = 7): ProgressSample => ({
  at,
  totals: { messages, accepted, deadLetters, flushes },
  lag,
  users,
});

describe('progressSummary', () => {
  it('gives the rates over the interval and the state at its end', () => {
    expect(progressSummary(sample(1_000, 100, 90, 10, 1, 5000), sample(3_500, 25_100, 24_590, 20, 3, 1200, 40))).toEqual({
      intervalS: 2.5,
      messagesPerS: 10_000,
      acceptedPerS: 9_800,
      deadLetters: 10,
      flushes: 2,
      lag: 1200,
      users: 40,
      totalMessages: 25_100,
      lostToRetention: 0,
    });
  });

  it('says the lag is unknown (null) before the first batch, and the rates are 0 while idle', () => {
    const s = progressSummary(sample(0, 0, 0, 0, 0, undefined), sample(10_000, 0, 0, 0, 0, undefined));
    expect(s.lag).toBeNull();
    expect(s.messagesPerS).toBe(0);
  });

  it('refuses samples out of order with the interval it got', () => {
    expect(() => progressSummary(sample(5_000, 0, 0, 0, 0, 0), sample(5_000, 1, 1, 0, 0, 0))).toThrow(/must be later than the first \(got 0 s/);
  });
});
