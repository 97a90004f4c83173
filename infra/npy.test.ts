import { createHash } from 'node:crypto';
import { sha256, sha256InSlices } from './artifacts';
import { decodeNpy, encodeNpy } from './npy';

describe('decodeNpy', () => {
  const values = Float32Array.from({ length: 96 }, (_, i) => i * 0.5 - 7);
  /** The encoded array in a buffer of its own (as fs.readFile returns a large file). */
  const owned = (): Buffer => {
    const encoded = encodeNpy(values, [24, 4]);
    const copy = Buffer.from(new ArrayBuffer(encoded.length));
    encoded.copy(copy);
    return copy;
  };

  it('copies by default: the array does not change with the buffer it came from', () => {
    const buffer = owned();
    const decoded = decodeNpy(buffer);
    expect(Array.from(decoded.data)).toEqual(Array.from(values));
    expect(decoded.shape).toEqual([24, 4]);
    buffer.fill(0);
    expect(Array.from(decoded.data)).toEqual(Array.from(values));
  });

  it('with copy: false reads a buffer it owns in place, and still copies a slice of a shared one', () => {
    const buffer = owned();
    const inPlace = decodeNpy(buffer, 'x.npy', { copy: false });
    expect(Array.from(inPlace.data)).toEqual(Array.from(values));
    expect(inPlace.data.buffer).toBe(buffer.buffer);
    // A buffer that shares its memory (a slice at an offset, as node's pool hands out) is copied.
    const shared = Buffer.concat([Buffer.alloc(8), owned()]).subarray(8);
    const copied = decodeNpy(shared, 'y.npy', { copy: false });
    expect(copied.data.buffer).not.toBe(shared.buffer);
    expect(Array.from(copied.data)).toEqual(Array.from(values));
  });
});

describe('sha256InSlices', () => {
  it('gives the digest of the whole buffer at and around slice boundaries', async () => {
    const data = Buffer.from(Array.from({ length: 1000 }, (_, i) => (i * 31) % 256));
    for (const length of [0, 1, 63, 64, 65, 128, 1000]) {
      const part = data.subarray(0, length);
      expect(await sha256InSlices(part, 64)).toBe(sha256(part));
    }
    expect(await sha256InSlices(data)).toBe(createHash('sha256').update(data).digest('hex'));
  });

  it('yields to the event loop between slices', async () => {
    // Another task queued on the event loop runs while the slices are hashed (a 1 ms timer did
    // not: warm, the 200 slices take less than a millisecond).
    let ticks = 0;
    let done = false;
    const tick = (): void => {
      ticks++;
      if (!done) setImmediate(tick);
    };
    setImmediate(tick);
    const hashing = sha256InSlices(Buffer.alloc(64 * 200), 64);
    const ticksAtStart = ticks;
    await hashing;
    done = true;
    expect(ticksAtStart).toBe(0);
    expect(ticks).toBeGreaterThan(0);
  });
});
