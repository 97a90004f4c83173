import * as tf from '@tensorflow/tfjs';
import { BackendError, describeValue } from '../errors';

/**
 * Kernels the TF.js wasm backend lacks but streamrec's models need. Registered by `initTf()`
 * before the wasm backend is selected.
 *
 * - `UnsortedSegmentSum`: the gradient of `tf.gather` (every embedding lookup) is an unsorted
 *   segment sum of the upstream gradient over the looked-up ids. tfjs-backend-wasm 4.22 has no
 *   such kernel, so without this one no embedding can be trained on wasm.
 * - `OneHot` with a non-int32 dtype: tfjs-backend-wasm 4.22's native kernel always writes int32
 *   values, so `tf.oneHot(ids, depth, 1, 0, 'float32')` returns int bit patterns read as floats
 *   (1 reads as 1.4e-45). The replacement computes float one-hots in JS and delegates int32 to
 *   the native kernel.
 *
 * The kernels are plain JS over the wasm heap: they read their inputs synchronously through the
 * backend (`readSync`) and hand the result back with `makeOutput`, as tfjs-backend-wasm's own JS
 * kernels (e.g. `Unique`) do. Every other kernel a CCFRec/SASRec training step uses (BatchMatMul,
 * GatherV2, Softmax, Erf, Mean, ScatterNd, GatherNd, IsFinite, ...) is native in tfjs-backend-wasm
 * 4.22; `trainer/wasm.test.ts` runs a full training step on wasm to keep that true.
 */

/** The minimal view of the wasm backend these kernels use. */
interface WasmBackendLike {
  readSync(dataId: tf.DataId): tf.backend_util.BackendValues;
  makeOutput(shape: number[], dtype: tf.DataType, memoryOffset?: number, values?: tf.backend_util.BackendValues): tf.TensorInfo;
}

/**
 * Sums the rows of `x` into `numSegments` buckets: `out[segmentIds[i], ...] += x[i, ...]`, where
 * `segmentIds` indexes the leading `segmentIds.length`-element part of `x`. Ids outside
 * `[0, numSegments)` are dropped, as TensorFlow does. Exported for tests.
 */
export function unsortedSegmentSumValues(
  x: ArrayLike<number>,
  xSize: number,
  segmentIds: ArrayLike<number>,
  numSegments: number,
  out: Float32Array | Int32Array,
): void {
  const n = segmentIds.length;
  const inner = n === 0 ? 0 : xSize / n;
  for (let i = 0; i < n; i++) {
    const s = segmentIds[i] as number;
    if (s < 0 || s >= numSegments) continue;
    const src = i * inner;
    const dst = s * inner;
    for (let j = 0; j < inner; j++) out[dst + j] = (out[dst + j] as number) + (x[src + j] as number);
  }
}

function unsortedSegmentSumKernel(args: {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}): tf.TensorInfo {
  const backend = args.backend as WasmBackendLike;
  const x = args.inputs.x;
  const segmentIds = args.inputs.segmentIds;
  const numSegments = Number(args.attrs?.numSegments);
  if (!x || !segmentIds) {
    throw new BackendError(`UnsortedSegmentSum (wasm): expected inputs x and segmentIds, got ${describeValue(Object.keys(args.inputs))}`);
  }
  if (!Number.isInteger(numSegments) || numSegments < 0) {
    throw new BackendError(`UnsortedSegmentSum (wasm): numSegments must be a non-negative integer, got ${describeValue(args.attrs?.numSegments)}`);
  }
  if (x.dtype !== 'float32' && x.dtype !== 'int32') {
    throw new BackendError(`UnsortedSegmentSum (wasm): x must be float32 or int32, got ${x.dtype}`);
  }
  const segRank = segmentIds.shape.length;
  for (let d = 0; d < segRank; d++) {
    if (segmentIds.shape[d] !== x.shape[d]) {
      throw new BackendError(
        `UnsortedSegmentSum (wasm): segmentIds shape [${segmentIds.shape.join(', ')}] must be a prefix of x shape [${x.shape.join(', ')}]`,
      );
    }
  }
  const outShape = [numSegments, ...x.shape.slice(segRank)];
  const xValues = backend.readSync(x.dataId) as Float32Array | Int32Array;
  const ids = backend.readSync(segmentIds.dataId) as Int32Array | Float32Array;
  const size = tf.util.sizeFromShape(outShape);
  const out = x.dtype === 'float32' ? new Float32Array(size) : new Int32Array(size);
  unsortedSegmentSumValues(xValues, tf.util.sizeFromShape(x.shape), ids, numSegments, out);
  return backend.makeOutput(outShape, x.dtype, undefined, out);
}

function oneHotValues(indices: ArrayLike<number>, depth: number, onValue: number, offValue: number, dtype: 'float32' | 'int32'): Float32Array | Int32Array {
  const out = dtype === 'float32' ? new Float32Array(indices.length * depth) : new Int32Array(indices.length * depth);
  if (offValue !== 0) out.fill(offValue);
  for (let i = 0; i < indices.length; i++) {
    const j = indices[i] as number;
    if (j >= 0 && j < depth) out[i * depth + j] = onValue;
  }
  return out;
}

/** Wraps the native wasm OneHot: float outputs are computed here, int32 ones natively. */
function oneHotKernel(native: tf.KernelFunc | undefined): tf.KernelFunc {
  return ((args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }) => {
    const attrs = (args.attrs ?? {}) as { dtype?: tf.DataType; depth?: number; onValue?: number; offValue?: number };
    const dtype = attrs.dtype ?? 'int32';
    if (dtype === 'int32' && native) return native(args as Parameters<tf.KernelFunc>[0]);
    if (dtype !== 'float32' && dtype !== 'int32') throw new BackendError(`OneHot (wasm): dtype ${dtype} is not supported`);
    const backend = args.backend as WasmBackendLike;
    const indices = args.inputs.indices;
    if (!indices) throw new BackendError('OneHot (wasm): expected input indices');
    const depth = Number(attrs.depth);
    const values = oneHotValues(backend.readSync(indices.dataId) as Int32Array, depth, Number(attrs.onValue ?? 1), Number(attrs.offValue ?? 0), dtype);
    return backend.makeOutput([...indices.shape, depth], dtype, undefined, values);
  }) as unknown as tf.KernelFunc;
}

let registered = false;

/** Registers the extra wasm kernels (idempotent). */
export function registerWasmExtraKernels(): void {
  if (registered) return;
  registered = true;
  if (tf.getKernel('UnsortedSegmentSum', 'wasm') === undefined) {
    tf.registerKernel({
      kernelName: 'UnsortedSegmentSum',
      backendName: 'wasm',
      kernelFunc: unsortedSegmentSumKernel as unknown as tf.KernelFunc,
    });
  }
  // Registering the wasm backend module (its side effect) has already added the native OneHot.
  const nativeOneHot = tf.getKernel('OneHot', 'wasm');
  if (nativeOneHot) tf.unregisterKernel('OneHot', 'wasm');
  tf.registerKernel({
    kernelName: 'OneHot',
    backendName: 'wasm',
    kernelFunc: oneHotKernel(nativeOneHot?.kernelFunc),
    ...(nativeOneHot?.setupFunc ? { setupFunc: nativeOneHot.setupFunc } : {}),
  });
}
