import type { Kafka, Message } from 'kafkajs';
import { sendChunked } from '../infra/kafka';
import type { InjectedMessage } from '../ingest/faults';
import type { UserHistory } from '../schemas/history';

/** Produces messages in order (key = userId), in requests of about 1,000. */
export async function produceAll(kafka: Kafka, topic: string, messages: ReadonlyArray<Pick<InjectedMessage, 'key' | 'value'>>): Promise<void> {
  const producer = kafka.producer({ allowAutoTopicCreation: true });
  await producer.connect();
  try {
    for (let i = 0; i < messages.length; i += 1000) {
      const chunk: Message[] = messages.slice(i, i + 1000).map((m) => ({ key: m.key, value: m.value }));
      await sendChunked(producer, topic, chunk);
    }
  } finally {
    await producer.disconnect();
  }
}

/**
 * The histories the ingest stage must end with, computed directly from the input: for each
 * user, the good events (those with no expected dead-letter code) sorted stably by event time,
 * the last `maxLength` of them.
 */
export function expectedHistories(messages: readonly InjectedMessage[], maxLength: number): Map<string, string[]> {
  const byUser = new Map<string, Array<{ ts: number; eventId: string; order: number }>>();
  messages.forEach((m, order) => {
    if (m.expected !== undefined || !m.event) return;
    const list = byUser.get(m.event.userId) ?? [];
    list.push({ ts: m.event.ts, eventId: m.event.eventId, order });
    byUser.set(m.event.userId, list);
  });
  const out = new Map<string, string[]>();
  for (const [user, list] of byUser) {
    list.sort((a, b) => a.ts - b.ts || a.order - b.order);
    out.set(user, list.slice(-maxLength).map((e) => e.eventId));
  }
  return out;
}

/** Event ids per user of actual histories, for comparison with {@link expectedHistories}. */
export function historyEventIds(histories: Iterable<UserHistory>): Map<string, string[]> {
  return new Map([...histories].map((h) => [h.userId, h.eventIds]));
}

/** Sorted "code payload" strings: a multiset to compare dead letters with what was injected. */
export function deadLetterKeys(items: Iterable<{ code: string; payloadBase64: string }>): string[] {
  return [...items].map((d) => `${d.code} ${d.payloadBase64}`).sort();
}

export async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
