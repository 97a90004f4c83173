import { onnx } from 'onnx-proto';

/**
 * A small builder over the official ONNX protobuf messages (package `onnx-proto`, the ONNX
 * schema compiled with protobufjs): initializers, nodes with generated unique output names, typed
 * attributes, graph inputs/outputs, and the encoded ModelProto. It knows nothing about models:
 * see encoderGraph.ts for what is built with it.
 */

/** ONNX `TensorProto.DataType` values used here. */
export const ONNX_FLOAT = onnx.TensorProto.DataType.FLOAT;
export const ONNX_INT32 = onnx.TensorProto.DataType.INT32;
export const ONNX_INT64 = onnx.TensorProto.DataType.INT64;
export const ONNX_BOOL = onnx.TensorProto.DataType.BOOL;

export type OnnxElementType = 'float32' | 'int32' | 'int64' | 'bool';

const ELEMENT_TYPES: Record<OnnxElementType, number> = { float32: ONNX_FLOAT, int32: ONNX_INT32, int64: ONNX_INT64, bool: ONNX_BOOL };

/** One dimension of a declared shape: a size, or a symbolic name (`batch`). */
export type OnnxDim = number | string;

/** A node attribute, typed as ONNX types it. */
export type OnnxAttribute = { readonly int: number } | { readonly ints: readonly number[] } | { readonly float: number };

/** A value of the graph (its name), as returned by the builder. */
export type OnnxValue = string;

function bytesOf(view: ArrayBufferView): Uint8Array {
  // ONNX raw_data is little-endian, as typed arrays are on every platform Node runs on here.
  return new Uint8Array(view.buffer.slice(view.byteOffset, view.byteOffset + view.byteLength));
}

function attribute(name: string, value: OnnxAttribute): onnx.IAttributeProto {
  const { AttributeType } = onnx.AttributeProto;
  if ('int' in value) return { name, type: AttributeType.INT, i: value.int };
  if ('ints' in value) return { name, type: AttributeType.INTS, ints: [...value.ints] };
  return { name, type: AttributeType.FLOAT, f: value.float };
}

function valueInfo(name: string, type: OnnxElementType, shape: readonly OnnxDim[]): onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: ELEMENT_TYPES[type],
        shape: { dim: shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

export class OnnxGraphBuilder {
  private readonly nodes: onnx.INodeProto[] = [];
  private readonly initializers: onnx.ITensorProto[] = [];
  private readonly inputs: onnx.IValueInfoProto[] = [];
  private readonly outputs: onnx.IValueInfoProto[] = [];
  private readonly names = new Set<string>();
  /** Domains other than the default one that the nodes use, with the opset version each needs. */
  private readonly domains = new Map<string, number>();
  private counter = 0;

  private unique(hint: string): string {
    let name = hint;
    while (this.names.has(name)) name = `${hint}_${++this.counter}`;
    this.names.add(name);
    return name;
  }

  /** Declares a graph input. */
  input(name: string, type: OnnxElementType, shape: readonly OnnxDim[]): OnnxValue {
    if (this.names.has(name)) throw new Error(`onnx graph: ${name} is defined twice`);
    this.names.add(name);
    this.inputs.push(valueInfo(name, type, shape));
    return name;
  }

  /** Declares `value` a graph output under `name` (an Identity node renames it). */
  output(value: OnnxValue, name: string, type: OnnxElementType, shape: readonly OnnxDim[]): void {
    if (this.names.has(name)) throw new Error(`onnx graph: ${name} is defined twice`);
    this.names.add(name);
    this.nodes.push({ opType: 'Identity', input: [value], output: [name], name: `${name}_out` });
    this.outputs.push(valueInfo(name, type, shape));
  }

  /** A float32 constant (weights, scalars). */
  floats(hint: string, dims: readonly number[], values: Float32Array | readonly number[]): OnnxValue {
    const data = values instanceof Float32Array ? values : Float32Array.from(values);
    const size = dims.reduce((a, b) => a * b, 1);
    if (data.length !== size) throw new Error(`onnx graph: initializer ${hint} has ${data.length} values, its shape [${dims.join(', ')}] needs ${size}`);
    const name = this.unique(hint);
    this.initializers.push({ name, dims: [...dims], dataType: ONNX_FLOAT, rawData: bytesOf(data) });
    return name;
  }

  /** An int64 constant (shapes, axes, indices). */
  int64s(hint: string, dims: readonly number[], values: readonly number[]): OnnxValue {
    const name = this.unique(hint);
    this.initializers.push({ name, dims: [...dims], dataType: ONNX_INT64, rawData: bytesOf(BigInt64Array.from(values, (v) => BigInt(v))) });
    return name;
  }

  /** An int32 constant. */
  int32s(hint: string, dims: readonly number[], values: readonly number[]): OnnxValue {
    const name = this.unique(hint);
    this.initializers.push({ name, dims: [...dims], dataType: ONNX_INT32, rawData: bytesOf(Int32Array.from(values)) });
    return name;
  }

  /** A bool constant. */
  bools(hint: string, dims: readonly number[], values: readonly boolean[]): OnnxValue {
    const name = this.unique(hint);
    this.initializers.push({ name, dims: [...dims], dataType: ONNX_BOOL, rawData: Uint8Array.from(values, (v) => (v ? 1 : 0)) });
    return name;
  }

  /** One node of the default domain with one output; returns the output's name. */
  op(opType: string, inputs: readonly OnnxValue[], attributes: Readonly<Record<string, OnnxAttribute>> = {}, hint = opType.toLowerCase()): OnnxValue {
    return this.node('', opType, inputs, attributes, hint);
  }

  /**
   * One node of another operator domain (`com.microsoft`: ONNX Runtime's contrib operators) with
   * one output; the model imports the domain at `version`. Only runtimes that implement the op
   * can load the graph.
   */
  domainOp(domain: string, version: number, opType: string, inputs: readonly OnnxValue[], attributes: Readonly<Record<string, OnnxAttribute>> = {}, hint = opType.toLowerCase()): OnnxValue {
    const imported = this.domains.get(domain);
    if (imported !== undefined && imported !== version) throw new Error(`onnx graph: domain ${domain} imported at version ${imported} and ${version}`);
    this.domains.set(domain, version);
    return this.node(domain, opType, inputs, attributes, hint);
  }

  private node(domain: string, opType: string, inputs: readonly OnnxValue[], attributes: Readonly<Record<string, OnnxAttribute>>, hint: string): OnnxValue {
    const output = this.unique(hint);
    this.nodes.push({
      opType,
      ...(domain ? { domain } : {}),
      input: [...inputs],
      output: [output],
      name: `${output}_node`,
      attribute: Object.entries(attributes).map(([k, v]) => attribute(k, v)),
    });
    return output;
  }

  /** The encoded ModelProto, every initializer inside it. */
  encode(meta: OnnxModelMeta): Uint8Array {
    return encodeModel(this.modelProto(meta, this.initializers));
  }

  /**
   * The encoded ModelProto with the initializers named in `external` stored outside it, as ONNX
   * external data (`data_location: EXTERNAL`, a `location` relative to the model file, `offset`,
   * `length`): `external` maps an initializer to its file; several in one file follow each other
   * at page-aligned offsets. Returns the model and each file's bytes. A runtime opening the model
   * from its path reads (ONNX Runtime on Linux: maps) the files beside it instead of copying the
   * values out of the ModelProto.
   */
  encodeWithExternalData(meta: OnnxModelMeta, external: Readonly<Record<string, string>>): { readonly model: Uint8Array; readonly files: readonly { readonly name: string; readonly data: Uint8Array }[] } {
    const parts = new Map<string, Uint8Array[]>();
    const lengths = new Map<string, number>();
    const named = new Set<string>();
    const initializers = this.initializers.map((tensor) => {
      const file = external[tensor.name as string];
      if (file === undefined) return tensor;
      named.add(tensor.name as string);
      const data = tensor.rawData as Uint8Array;
      const at = lengths.get(file) ?? 0;
      const offset = Math.ceil(at / EXTERNAL_ALIGNMENT) * EXTERNAL_ALIGNMENT;
      const list = parts.get(file) ?? [];
      if (offset > at) list.push(new Uint8Array(offset - at));
      list.push(data);
      parts.set(file, list);
      lengths.set(file, offset + data.length);
      return {
        ...tensor,
        rawData: new Uint8Array(0),
        dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
        externalData: [
          { key: 'location', value: file },
          { key: 'offset', value: String(offset) },
          { key: 'length', value: String(data.length) },
        ],
      };
    });
    const missing = Object.keys(external).filter((name) => !named.has(name));
    if (missing.length > 0) throw new Error(`onnx graph: no initializer ${missing.join(', ')} to store as external data`);
    const model = encodeModel(this.modelProto(meta, initializers));
    return { model, files: [...parts].map(([name, list]) => ({ name, data: Buffer.concat(list) })) };
  }

  private modelProto(meta: OnnxModelMeta, initializers: onnx.ITensorProto[]): onnx.IModelProto {
    return {
      irVersion: meta.irVersion,
      opsetImport: [{ domain: '', version: meta.opset }, ...[...this.domains].map(([domain, version]) => ({ domain, version }))],
      producerName: meta.producer,
      producerVersion: meta.producerVersion,
      docString: meta.docString,
      graph: { name: meta.graphName, node: this.nodes, initializer: initializers, input: this.inputs, output: this.outputs },
      metadataProps: Object.entries(meta.metadata).map(([key, value]) => ({ key, value })),
    };
  }
}

/** What a ModelProto says about itself besides the graph. */
export interface OnnxModelMeta {
  readonly graphName: string;
  readonly opset: number;
  readonly irVersion: number;
  readonly producer: string;
  readonly producerVersion: string;
  readonly docString: string;
  readonly metadata: Readonly<Record<string, string>>;
}

/** Offsets of external data are multiples of this (a page: what a runtime can map in place). */
const EXTERNAL_ALIGNMENT = 4096;

function encodeModel(model: onnx.IModelProto): Uint8Array {
  const error = onnx.ModelProto.verify(model);
  if (error) throw new Error(`onnx graph: invalid ModelProto: ${error}`);
  return onnx.ModelProto.encode(model).finish();
}
