import { CoalescingEncoder } from './coalescingEncoder';
import { OnnxUserEncoder, buildOnnxEncoder } from './onnx';
import { L, batchOf, trainedModel, type TrainedFixture } from './onnx/testing/fixtures';
import type { UserEncoder } from './onnx';
import type { SequenceBatch } from '../trainer';
import { initTf } from '../infra/tf';

/** Counts the engine calls and rows a wrapped encoder receives. */
class Counting implements UserEncoder {
  calls: number[] = [];
  constructor(private readonly inner: UserEncoder) {}
  get kind(): UserEncoder['kind'] {
    return this.inner.kind;
  }
  get itemCount(): number {
    return this.inner.itemCount;
  }
  get hiddenSize(): number {
    return this.inner.hiddenSize;
  }
  get maxHistoryLength(): number {
    return this.inner.maxHistoryLength;
  }
  encode(batch: SequenceBatch): Promise<Float32Array> {
    this.calls.push(batch.size);
    return this.inner.encode(batch);
  }
  dispose(): Promise<void> {
    return this.inner.dispose();
  }
}

describe('CoalescingEncoder', () => {
  let fixture: TrainedFixture;
  let engine: OnnxUserEncoder;

  beforeAll(async () => {
    await initTf();
    fixture = trainedModel('ccfrec');
    const built = buildOnnxEncoder({ model: fixture.model, checkpointId: 'checkpoint-test-coalescing', sideInfo: fixture.sideInfo });
    engine = await OnnxUserEncoder.create(built.bytes, built.settings, { threads: 1 });
  });
  afterAll(async () => {
    await engine.dispose();
    fixture.model.dispose();
  });

  const histories = Array.from({ length: 40 }, (_, u) => Array.from({ length: 1 + (u % L) }, (_, t) => 1 + ((u * 7 + t * 13) % 120)));

  it("encodes concurrent callers' batches in one engine call, each getting exactly its own rows' vectors", async () => {
    const counting = new Counting(engine);
    const coalescing = new CoalescingEncoder(counting, 64);
    const alone = await Promise.all(histories.map((h) => engine.encode(batchOf([h]))));
    const requests = [batchOf(histories.slice(0, 3)), ...histories.slice(3).map((h) => batchOf([h]))];
    const together = await Promise.all(requests.map((b) => coalescing.encode(b)));
    expect(counting.calls).toEqual([histories.length]); // one call for 38 callers, 40 rows
    expect(coalescing.calls).toBe(1);
    expect(coalescing.batches).toBe(requests.length);
    const H = engine.hiddenSize;
    expect(together[0]).toHaveLength(3 * H);
    const flat = together.flatMap((v) => Array.from({ length: v.length / H }, (_, r) => v.subarray(r * H, (r + 1) * H)));
    flat.forEach((v, u) => {
      const own = alone[u] as Float32Array;
      for (let j = 0; j < H; j++) expect(Math.abs((v[j] as number) - (own[j] as number))).toBeLessThan(1e-5);
    });
  });

  it('splits at maxRows, and callers in different turns get separate calls', async () => {
    const counting = new Counting(engine);
    const coalescing = new CoalescingEncoder(counting, 16);
    await Promise.all(histories.map((h) => coalescing.encode(batchOf([h]))));
    expect(counting.calls).toEqual([16, 16, 8]);
    counting.calls = [];
    await coalescing.encode(batchOf([histories[0] as number[]]));
    await coalescing.encode(batchOf([histories[1] as number[]]));
    expect(counting.calls).toEqual([1, 1]);
  });

  it('fails every caller of a failed engine call, and later calls still work', async () => {
    const coalescing = new CoalescingEncoder(engine, 64);
    const bad = batchOf([[1, 2]]);
    bad.items[1] = 10_000; // not an item of the model
    const outcomes = await Promise.allSettled([coalescing.encode(batchOf([[1, 2]])), coalescing.encode(bad)]);
    expect(outcomes.map((o) => o.status)).toEqual(['rejected', 'rejected']);
    expect(String((outcomes[1] as PromiseRejectedResult).reason)).toMatch(/item|range|10000/);
    await expect(coalescing.encode(batchOf([[1, 2]]))).resolves.toHaveLength(engine.hiddenSize);
  });
});
