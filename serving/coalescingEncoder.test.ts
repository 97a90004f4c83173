import { CoalescingEncoder } from './coalescingEncoder';
import { OnnxUserEncoder, buildOnnxEncoder } from './onnx';
import { L, batchOf, trainedModel, type TrainedFixture } from './onnx/testing/fixtures';
import { initTf } from '../infra/tf';

describe('CoalescingEncoder', () => {
  let fixture: TrainedFixture;
  let engine: OnnxUserEncoder;

  beforeAll(async () => {
    await initTf();
    fixture = trainedModel('ccfrec');
    const built = buildOnnxEncoder({ model: fixture.model, checkpointId: 'checkpoint-test-coalescing', sideInfo: fixture.sideInfo });
    engine = await OnnxUserEncoder.create(built.bytes, built.settings, { threads: 1 });
  });
  /** Watches the engine: the rows of each batch it receives. */
  function watchEngine(): { rows: () => number[]; clear: () => void } {
    const spy = jest.spyOn(engine, 'encode');
    return { rows: () => spy.mock.calls.map(([batch]) => batch.size), clear: () => spy.mockClear() };
  }

  afterEach(() => jest.restoreAllMocks());
  afterAll(async () => {
    await engine.dispose();
    fixture.model.dispose();
  });

  const histories = Array.from({ length: 40 }, (_, u) => Array.from({ length: 1 + (u % L) }, (_, t) => 1 + ((u * 7 + t * 13) % 120)));

  it("encodes concurrent callers' batches in one engine call, each getting exactly its own rows' vectors", async () => {
    const alone = await Promise.all(histories.map((h) => engine.encode(batchOf([h]))));
    const watched = watchEngine();
    const coalescing = new CoalescingEncoder(engine, 64);
    const requests = [batchOf(histories.slice(0, 3)), ...histories.slice(3).map((h) => batchOf([h]))];
    const together = await Promise.all(requests.map((b) => coalescing.encode(b)));
    expect(watched.rows()).toEqual([histories.length]); // one call for 38 callers, 40 rows
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
    const watched = watchEngine();
    const coalescing = new CoalescingEncoder(engine, 16);
    await Promise.all(histories.map((h) => coalescing.encode(batchOf([h]))));
    expect(watched.rows()).toEqual([16, 16, 8]);
    watched.clear();
    await coalescing.encode(batchOf([histories[0] as number[]]));
    await coalescing.encode(batchOf([histories[1] as number[]]));
    expect(watched.rows()).toEqual([1, 1]);
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
