import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { onnx } from 'onnx-proto';
import { OnnxGraphBuilder } from './onnxGraph';

const META = { graphName: 'g', opset: 17, irVersion: 8, producer: 'test', producerVersion: '0', docString: '', metadata: {} };

/** y = (x + a) * b + c, with a and b as external data in one file, c inside the graph. */
function graph(): OnnxGraphBuilder {
  const g = new OnnxGraphBuilder();
  const x = g.input('x', 'float32', [1, 3]);
  const sum = g.op('Add', [x, g.floats('a', [3], [1, 2, 3])]);
  const product = g.op('Mul', [sum, g.floats('b', [3], [10, 20, 30])]);
  g.output(g.op('Add', [product, g.floats('c', [3], [0.5, 0.25, 0.125])]), 'y', 'float32', [1, 3]);
  return g;
}

describe('OnnxGraphBuilder.encodeWithExternalData', () => {
  it('stores the named initializers in their files at page-aligned offsets; the model opened from its path computes what the self-contained one does', async () => {
    const { model, files } = graph().encodeWithExternalData(META, { a: 'weights.bin', b: 'weights.bin' });
    const initializers = (onnx.ModelProto.decode(model).graph as onnx.GraphProto).initializer as onnx.TensorProto[];
    const placed = initializers.map((t) => [t.name, t.dataLocation, t.rawData.length, t.externalData.map((e) => `${e.key}=${e.value}`).join(' ')]);
    expect(placed).toEqual([
      ['a', onnx.TensorProto.DataLocation.EXTERNAL, 0, 'location=weights.bin offset=0 length=12'],
      ['b', onnx.TensorProto.DataLocation.EXTERNAL, 0, 'location=weights.bin offset=4096 length=12'],
      ['c', onnx.TensorProto.DataLocation.DEFAULT, 12, ''],
    ]);
    expect(files.map((f) => [f.name, f.data.length])).toEqual([['weights.bin', 4096 + 12]]);
    expect(Array.from(new Float32Array(Uint8Array.from(files[0]!.data.subarray(4096)).buffer))).toEqual([10, 20, 30]);

    const dir = await mkdtemp(path.join(tmpdir(), 'streamrec-onnx-graph-'));
    try {
      await writeFile(path.join(dir, 'model.onnx'), model);
      for (const f of files) await writeFile(path.join(dir, f.name), f.data);
      const ort = await import('onnxruntime-node');
      const x = new ort.Tensor('float32', Float32Array.from([1, -1, 0.5]), [1, 3]);
      const fromPath = await ort.InferenceSession.create(path.join(dir, 'model.onnx'));
      const whole = await ort.InferenceSession.create(graph().encode(META));
      const y = Array.from((await fromPath.run({ x })).y?.data as Float32Array);
      expect(y).toEqual([20.5, 20.25, 105.125]);
      expect(Array.from((await whole.run({ x })).y?.data as Float32Array)).toEqual(y);
      await fromPath.release();
      await whole.release();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses a name that is no initializer', () => {
    expect(() => graph().encodeWithExternalData(META, { a: 'w.bin', missing: 'w.bin' })).toThrow('onnx graph: no initializer missing to store as external data');
  });
});
