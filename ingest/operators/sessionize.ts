import { map, type OperatorFunction } from 'rxjs';
import type { IngestBatch } from '../types';

/** A user's current session. */
export interface SessionMark {
  readonly index: number;
  readonly startTs: number;
  readonly lastTs: number;
}

/** Where session marks live (the history store keeps them in each user's history). */
export interface SessionState {
  getSession(userId: string): SessionMark | undefined;
  setSession(userId: string, mark: SessionMark): void;
}

/**
 * Splits each user's events into sessions by an inactivity gap: an event more than `gapMs`
 * after the user's previous newest event starts a new session. Each event gets its 0-based
 * `sessionIndex` (set on the event objects, which the pipeline owns). Events out of order (earlier than the newest) stay in the current session.
 *
 * @example
 * events$.pipe(sessionize({ gapMs: 30 * 60_000, state }))
 */
export function sessionize<T extends { userId: string; ts: number }>(options: {
  readonly gapMs: number;
  readonly state: SessionState;
}): OperatorFunction<IngestBatch<T>, IngestBatch<T>> {
  const { gapMs, state } = options;
  return map((batch) => {
    const marks = new Map<string, SessionMark>();
    for (const e of batch.events) {
      const { userId, ts } = e.event;
      const prev = marks.get(userId) ?? state.getSession(userId);
      let mark: SessionMark;
      if (!prev) mark = { index: 0, startTs: ts, lastTs: ts };
      else if (ts - prev.lastTs > gapMs) mark = { index: prev.index + 1, startTs: ts, lastTs: ts };
      else mark = { index: prev.index, startTs: prev.startTs, lastTs: Math.max(prev.lastTs, ts) };
      marks.set(userId, mark);
      // Annotated in place: the events were created for this pipeline by decodeEvents.
      (e as { sessionIndex?: number }).sessionIndex = mark.index;
    }
    for (const [userId, mark] of marks) state.setSession(userId, mark);
    return batch;
  });
}
