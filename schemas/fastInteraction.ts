import { INTERACTION_TYPES, isValidId, type InteractionEvent } from './events';
import type { EventLimits } from './limits';

const TYPES: ReadonlySet<string> = new Set(INTERACTION_TYPES);
const KNOWN_KEYS: ReadonlySet<string> = new Set(['eventId', 'userId', 'itemId', 'type', 'value', 'ts', 'source', 'context']);

/**
 * The common case of {@link interactionEventSchema}, checked without zod: a plain object whose
 * fields are all valid, with a numeric `ts` and no `context`. Returns the same value zod's
 * parse would (`ts` rounded; the input itself when `ts` is already whole), or `undefined` when the input is anything
 * else; the caller then runs the full zod schema, which accepts or explains. It never accepts
 * what the schema rejects (tested property by property).
 */
export function fastInteraction(input: Record<string, unknown>, limits: EventLimits): InteractionEvent | undefined {
  const { eventId, userId, itemId, type, value, ts, source } = input;
  if (!isValidId(eventId, limits.maxIdLength) || !isValidId(userId, limits.maxIdLength) || !isValidId(itemId, limits.maxIdLength)) return undefined;
  if (typeof type !== 'string' || !TYPES.has(type)) return undefined;
  if (typeof ts !== 'number' || !Number.isFinite(ts)) return undefined;
  if (value !== undefined && (typeof value !== 'number' || !Number.isFinite(value))) return undefined;
  if (type === 'rating' && value === undefined) return undefined;
  if (source !== undefined && (typeof source !== 'string' || source.length > 128)) return undefined;
  if (input.context !== undefined) return undefined;
  for (const key in input) if (!KNOWN_KEYS.has(key)) return undefined;
  // Only known keys, all valid: the parsed object already is the event (no copy per event).
  if (Number.isInteger(ts)) return input as unknown as InteractionEvent;
  const event: InteractionEvent = { eventId, userId, itemId, type: type as InteractionEvent['type'], ts: Math.round(ts) };
  if (value !== undefined) event.value = value as number;
  if (source !== undefined) event.source = source as string;
  return event;
}
