import { collectGarbage } from '../test/gc';
import { WeakValues } from './weakValues';

describe('WeakValues', () => {
  it('gives back the value set for a key while it is held, and does not keep it alive', async () => {
    const values = new WeakValues<{ n: number }>();
    let held: { n: number } | undefined = values.set('a', { n: 1 });
    expect(values.get('a')).toBe(held);
    expect(values.get('b')).toBeUndefined();
    const weak = new WeakRef(held);
    held = undefined;
    await new Promise((resolve) => setImmediate(resolve)); // a WeakRef's target is kept until the job that made it ends
    collectGarbage();
    expect(weak.deref()).toBeUndefined();
    expect(values.get('a')).toBeUndefined();
  });
});
