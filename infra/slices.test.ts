import { inSlices, yieldToEventLoop } from './slices';

describe('inSlices', () => {
  it('covers [0, total) in order, in ranges of at most the slice, with the event loop let in between', async () => {
    const ranges: Array<[number, number]> = [];
    const events: string[] = [];
    await inSlices(10, 4, (from, to) => {
      ranges.push([from, to]);
      events.push(`slice ${from}`);
      // Work queued on the event loop during a slice (I/O callbacks, immediates) runs before the next slice.
      setImmediate(() => events.push(`queued after ${from}`));
    });
    expect(ranges).toEqual([
      [0, 4],
      [4, 8],
      [8, 10],
    ]);
    await yieldToEventLoop();
    expect(events).toEqual(['slice 0', 'queued after 0', 'slice 4', 'queued after 4', 'slice 8', 'queued after 8']);
  });

  it('calls nothing for an empty range, and refuses a slice that is not a positive integer', async () => {
    const step = jest.fn();
    await inSlices(0, 4, step);
    expect(step).not.toHaveBeenCalled();
    await expect(inSlices(5, 0, step)).rejects.toThrow('inSlices: slice must be a positive integer, got 0');
    await expect(inSlices(5, 1.5, step)).rejects.toThrow(RangeError);
  });
});
