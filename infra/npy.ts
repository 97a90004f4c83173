import { ArtifactError } from '../errors';

/**
 * NumPy `.npy` (format 1.0) encode/decode for little-endian float32, int32, uint8 and uint16
 * C-order arrays, so that matrices written here can be loaded with `numpy.load` (and faiss)
 * outside the project.
 */

export type NpyDtype = 'float32' | 'int32' | 'uint8' | 'uint16';
export type NpyData = Float32Array | Int32Array | Uint8Array | Uint16Array;

const DESCR: Record<NpyDtype, string> = { float32: '<f4', int32: '<i4', uint8: '|u1', uint16: '<u2' };
const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]);

export interface NpyArray {
  readonly dtype: NpyDtype;
  readonly shape: number[];
  readonly data: NpyData;
}

/**
 * The dtype of a typed array, by its type tag rather than `instanceof`: an array made in another
 * realm (a native addon's, a test sandbox's) is still the same kind of array.
 */
export function dtypeOf(data: NpyData): NpyDtype {
  switch (Object.prototype.toString.call(data)) {
    case '[object Float32Array]':
      return 'float32';
    case '[object Int32Array]':
      return 'int32';
    case '[object Uint16Array]':
      return 'uint16';
    default:
      return 'uint8';
  }
}

export function encodeNpy(data: NpyData, shape: readonly number[]): Buffer {
  const count = shape.reduce((a, b) => a * b, 1);
  if (count !== data.length) {
    throw new ArtifactError(`encodeNpy: shape [${shape.join(', ')}] holds ${count} elements, data has ${data.length}`);
  }
  const dtype = dtypeOf(data);
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '${DESCR[dtype]}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  // Pad so that magic(6) + version(2) + len(2) + header is a multiple of 64, ending in \n.
  const unpadded = 10 + header.length + 1;
  header += ' '.repeat((64 - (unpadded % 64)) % 64) + '\n';
  const head = Buffer.alloc(10);
  MAGIC.copy(head, 0);
  head[6] = 1;
  head[7] = 0;
  head.writeUInt16LE(header.length, 8);
  const body = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return Buffer.concat([head, Buffer.from(header, 'latin1'), body]);
}

/** Whether `view` spans the whole of its ArrayBuffer (not a slice of node's shared pool nor of a larger buffer): it can be kept as it is. */
export function hasOwnMemory(view: ArrayBufferView): boolean {
  return view.byteOffset === 0 && view.buffer.byteLength === view.byteLength;
}

export function decodeNpy(buffer: Buffer, where = 'npy', options: { readonly copy?: boolean } = {}): NpyArray {
  if (buffer.length < 10 || !buffer.subarray(0, 6).equals(MAGIC)) {
    throw new ArtifactError(`${where}: not a .npy file (bad magic bytes)`, { context: { path: where } });
  }
  const major = buffer[6];
  const headerLength = major === 1 ? buffer.readUInt16LE(8) : buffer.readUInt32LE(8);
  const headerStart = major === 1 ? 10 : 12;
  const header = buffer.subarray(headerStart, headerStart + headerLength).toString('latin1');
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) {
    throw new ArtifactError(`${where}: unreadable .npy header ${JSON.stringify(header)}`, { context: { path: where } });
  }
  if (fortran === 'True') throw new ArtifactError(`${where}: Fortran-order arrays are not supported`, { context: { path: where } });
  const dtype = (Object.keys(DESCR) as NpyDtype[]).find((k) => DESCR[k] === descr);
  if (!dtype) {
    throw new ArtifactError(`${where}: dtype ${descr} is not supported (expected one of ${Object.values(DESCR).join(', ')})`, {
      context: { path: where },
    });
  }
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map(Number);
  const count = shape.reduce((a, b) => a * b, 1);
  const offset = headerStart + headerLength;
  const width = dtype === 'float32' || dtype === 'int32' ? 4 : dtype === 'uint16' ? 2 : 1;
  if (buffer.length - offset !== count * width) {
    throw new ArtifactError(
      `${where}: .npy body has ${buffer.length - offset} bytes, shape [${shape.join(', ')}] needs ${count * width} (truncated or corrupt)`,
      { context: { path: where } },
    );
  }
  // Copy into a fresh, aligned buffer; with `copy: false` a body aligned for its type is read in
  // place (a view of `buffer`, which must then stay unchanged: a file read for this alone), when
  // `buffer` has its memory to itself (not a slice of node's shared pool).
  const inPlace = options.copy === false && hasOwnMemory(buffer) && offset % width === 0;
  let body: ArrayBuffer;
  let start = 0;
  if (inPlace) {
    body = buffer.buffer as ArrayBuffer;
    start = offset;
  } else {
    const bytes = new Uint8Array(count * width);
    bytes.set(buffer.subarray(offset));
    body = bytes.buffer;
  }
  const data =
    dtype === 'float32'
      ? new Float32Array(body, start, count)
      : dtype === 'int32'
        ? new Int32Array(body, start, count)
        : dtype === 'uint16'
          ? new Uint16Array(body, start, count)
          : new Uint8Array(body, start, count);
  return { dtype, shape, data };
}
