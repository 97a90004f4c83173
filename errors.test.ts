import { ConfigError, KafkaError, StreamrecError, describeValue, isRetriable } from './errors';

describe('errors', () => {
  it('carry a stable code, retriability, cause and context', () => {
    const cause = new Error('socket closed');
    const e = new KafkaError('fetch failed', { retriable: true, cause, context: { topic: 't', partition: 2 } });
    expect(e).toBeInstanceOf(StreamrecError);
    expect(e.name).toBe('KafkaError');
    expect(e.code).toBe('kafka');
    expect(e.cause).toBe(cause);
    expect(e.context).toEqual({ topic: 't', partition: 2 });
    expect(isRetriable(e)).toBe(true);
    expect(isRetriable(new ConfigError('bad'))).toBe(false);
    expect(isRetriable(new Error('plain'))).toBe(false);
  });

  it('describe received values briefly for messages', () => {
    expect(describeValue(undefined)).toBe('undefined');
    expect(describeValue(null)).toBe('null');
    expect(describeValue(3)).toBe('number 3');
    expect(describeValue('abc')).toBe('string "abc"');
    expect(describeValue('x'.repeat(50))).toMatch(/^string "x{40}\.\.\." \(50 chars\)$/);
    expect(describeValue([1, 2])).toBe('array(2)');
    expect(describeValue({ a: 1, b: 2 })).toBe('object {a, b}');
    expect(describeValue(new Float32Array(3))).toBe('Float32Array(3)');
  });
});
