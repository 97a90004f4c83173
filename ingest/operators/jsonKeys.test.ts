import { suspiciousKey } from './jsonKeys';

describe('suspiciousKey', () => {
  it('finds a key given twice at any depth, with its path, however it is escaped', () => {
    expect(suspiciousKey('{"userId": "a", "itemId": "i", "userId": "b"}')).toEqual({ path: 'userId', reason: 'duplicate' });
    expect(suspiciousKey('{"context": {"a": 1, "b": {"c": 1, "c": 2}}}')).toEqual({ path: 'context.b.c', reason: 'duplicate' });
    expect(suspiciousKey('{"list": [{"k": 1}, {"k": 1, "k": 2}]}')).toEqual({ path: 'list.1.k', reason: 'duplicate' });
    expect(suspiciousKey('{"userId": "a", "user\\u0049d": "b"}')).toEqual({ path: 'userId', reason: 'duplicate' });
  });

  it('finds __proto__ as a key (escaped too), never as a value', () => {
    expect(suspiciousKey('{"context": {"__proto__": {"x": 1}}}')).toEqual({ path: 'context.__proto__', reason: 'proto' });
    expect(suspiciousKey('{"__pro\\u0074o__": 1}')).toEqual({ path: '__proto__', reason: 'proto' });
    expect(suspiciousKey('{"title": "__proto__", "tags": ["__proto__"]}')).toBeUndefined();
  });

  it('passes the same key in sibling objects, keys in strings, escaped quotes, and arrays of scalars', () => {
    expect(suspiciousKey('{"a": {"k": 1}, "b": {"k": 1}, "s": "\\"a\\": 1, \\"a\\": 2", "n": [1, "a", {"a": [2, 3]}], "a2": null}')).toBeUndefined();
    expect(suspiciousKey('{"eventId": "e", "userId": "u", "itemId": "i", "type": "view", "ts": 1}')).toBeUndefined();
    expect(suspiciousKey('[{"a": 1}, {"a": 2}]')).toBeUndefined();
  });
});
