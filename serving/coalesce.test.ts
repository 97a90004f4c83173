import { Random } from '../random';
import { Coalescer } from './coalesce';
import { clusteredUnitVectors } from './ann/synthetic';
import { OnnxItemScorer } from './onnx';

describe('Coalescer', () => {
  /** A coalescer over number arrays whose run doubles each value and records the inputs of each call. */
  function doubling(maxRows = 64, joinable?: (input: number[]) => boolean) {
    const calls: number[][][] = [];
    const coalescer = new Coalescer<number[], number[]>(
      async (inputs) => {
        calls.push(inputs.map((i) => [...i]));
        return inputs.map((i) => i.map((v) => 2 * v));
      },
      (input) => input.length,
      maxRows,
      joinable,
    );
    return { coalescer, calls };
  }

  it('runs the inputs submitted in one turn as one call, and gives each caller its own output', async () => {
    const { coalescer, calls } = doubling();
    const outputs = await Promise.all([coalescer.submit([1]), coalescer.submit([2, 3]), coalescer.submit([4])]);
    expect(outputs).toEqual([[2], [4, 6], [8]]);
    expect(calls).toEqual([[[1], [2, 3], [4]]]);
    expect([coalescer.calls, coalescer.inputs]).toEqual([1, 3]);
    // A later turn is another call.
    await expect(coalescer.submit([5])).resolves.toEqual([10]);
    expect(calls).toHaveLength(2);
  });

  it('flushes when maxRows rows wait, and runs an input of maxRows rows or one it may not join alone', async () => {
    const { coalescer, calls } = doubling(3, (input) => input[0] !== 99);
    await Promise.all([coalescer.submit([1, 1]), coalescer.submit([2]), coalescer.submit([3]), coalescer.submit([7, 7, 7]), coalescer.submit([99])]);
    // [1, 1] + [2] reach 3 rows and run at once; [3] waits for the end of the turn.
    expect(calls).toEqual([[[1, 1], [2]], [[7, 7, 7]], [[99]], [[3]]]);
  });

  it('fails every caller of a failed call, and the next call runs again', async () => {
    let fail = true;
    const coalescer = new Coalescer<number, number>(
      async (inputs) => {
        if (fail) throw new Error('engine down');
        return [...inputs];
      },
      () => 1,
    );
    const results = await Promise.allSettled([coalescer.submit(1), coalescer.submit(2)]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    fail = false;
    await expect(coalescer.submit(3)).resolves.toBe(3);
  });

  it('refuses a run that does not return one output per input', async () => {
    const coalescer = new Coalescer<number, number>(async () => [1], () => 1);
    await expect(Promise.all([coalescer.submit(1), coalescer.submit(2)])).rejects.toThrow('1 outputs for 2 inputs');
  });
});

describe('OnnxItemScorer coalescing', () => {
  it("scores concurrent callers' queries in one session run, each getting exactly the scores it would get alone", async () => {
    const H = 8;
    const N = 500;
    const rng = new Random(3);
    const table = new Float32Array((N + 1) * H);
    table.set(clusteredUnitVectors(N, H, rng).data, H);
    const queries = Array.from({ length: 5 }, (_, b) => clusteredUnitVectors(1 + (b % 2), H, rng).data);
    const scorer = await OnnxItemScorer.create(table, H);
    try {
      const alone: Float32Array[] = [];
      for (const q of queries) alone.push(Float32Array.from(await scorer.scores(q, q.length / H)));
      const before = scorer.runs.calls;
      const together = await Promise.all(queries.map((q) => scorer.scores(q, q.length / H)));
      expect(scorer.runs.calls - before).toBe(1);
      together.forEach((scores, b) => {
        expect(scores).toHaveLength((queries[b] as Float32Array).length / H * (N + 1));
        expect(Array.from(scores)).toEqual(Array.from(alone[b] as Float32Array));
      });
      await expect(scorer.scores(new Float32Array(H + 1), 1)).rejects.toThrow(`expected [1, ${H}] queries`);
    } finally {
      await scorer.dispose();
    }
  });
});
