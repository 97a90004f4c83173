import { promises as fs } from 'node:fs';
import path from 'node:path';

/**
 * Test helpers that build a tiny sentence-encoder model directory with no downloads: a minimal
 * ONNX protobuf writer (only the few ModelProto/GraphProto/NodeProto/TensorProto/ValueInfoProto
 * fields needed, encoded by hand) and a small BERT-style WordPiece `tokenizer.json`.
 *
 * The model is `last_hidden_state[b, t, :] = embedding[input_ids[b, t], :]` (one Gather), so the
 * expected sentence embedding is the mean of known table rows: tests compute it by hand.
 */

// --- protobuf wire format -------------------------------------------------------------------

const WIRE_VARINT = 0;
const WIRE_BYTES = 2;

function varint(value: number | bigint): number[] {
  // int64 fields: negative values are written as 10-byte two's complement.
  let v = BigInt.asUintN(64, BigInt(value));
  const out: number[] = [];
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v !== 0n) byte |= 0x80;
    out.push(byte);
  } while (v !== 0n);
  return out;
}

class ProtoWriter {
  private readonly parts: Buffer[] = [];

  int(field: number, value: number | bigint): this {
    this.parts.push(Buffer.from([...varint((field << 3) | WIRE_VARINT), ...varint(value)]));
    return this;
  }

  bytes(field: number, data: Buffer | Uint8Array): this {
    this.parts.push(Buffer.from([...varint((field << 3) | WIRE_BYTES), ...varint(data.length)]), Buffer.from(data));
    return this;
  }

  string(field: number, text: string): this {
    return this.bytes(field, Buffer.from(text, 'utf8'));
  }

  message(field: number, inner: ProtoWriter): this {
    return this.bytes(field, inner.finish());
  }

  finish(): Buffer {
    return Buffer.concat(this.parts);
  }
}

// --- ONNX messages (field numbers from onnx.proto3) -----------------------------------------

const ONNX_FLOAT = 1;
const ONNX_INT64 = 7;
const ATTRIBUTE_INT = 2;

/** One dimension: a number (dim_value) or a symbolic name (dim_param). */
type Dim = number | string;

function valueInfo(name: string, elemType: number, shape: Dim[]): ProtoWriter {
  const shapeProto = new ProtoWriter();
  for (const d of shape) {
    shapeProto.message(1, typeof d === 'number' ? new ProtoWriter().int(1, d) : new ProtoWriter().string(2, d));
  }
  const tensorType = new ProtoWriter().int(1, elemType).message(2, shapeProto);
  const typeProto = new ProtoWriter().message(1, tensorType);
  return new ProtoWriter().string(1, name).message(2, typeProto);
}

function floatTensor(name: string, dims: number[], values: Float32Array): ProtoWriter {
  const t = new ProtoWriter();
  for (const d of dims) t.int(1, d);
  t.int(2, ONNX_FLOAT).string(8, name);
  return t.bytes(9, Buffer.from(values.buffer, values.byteOffset, values.byteLength));
}

export interface TinyEncoderOptions {
  /** Embedding table, row-major [vocabSize, hidden]. */
  readonly embedding: Float32Array;
  readonly vocabSize: number;
  readonly hidden: number;
  /** Also declare a (unused) `token_type_ids` input, as BERT exports do. */
  readonly withTokenTypeIds?: boolean;
}

/**
 * Serialises an ONNX model: inputs `input_ids` [batch, sequence] int64 and `attention_mask`
 * [batch, sequence] int64 (declared, unused, like a real encoder's) -> Gather(embedding, input_ids)
 * -> output `last_hidden_state` [batch, sequence, hidden] float32. Opset 13, IR version 8.
 */
export function buildTinyEncoderOnnx(options: TinyEncoderOptions): Buffer {
  const { embedding, vocabSize, hidden } = options;
  if (embedding.length !== vocabSize * hidden) {
    throw new Error(`embedding has ${embedding.length} values, expected ${vocabSize} x ${hidden}`);
  }
  const gather = new ProtoWriter()
    .string(1, 'embedding')
    .string(1, 'input_ids')
    .string(2, 'last_hidden_state')
    .string(3, 'gather')
    .string(4, 'Gather')
    .message(5, new ProtoWriter().string(1, 'axis').int(3, 0).int(20, ATTRIBUTE_INT));
  const graph = new ProtoWriter()
    .message(1, gather)
    .string(2, 'tiny_encoder')
    .message(5, floatTensor('embedding', [vocabSize, hidden], embedding))
    .message(11, valueInfo('input_ids', ONNX_INT64, ['batch', 'sequence']))
    .message(11, valueInfo('attention_mask', ONNX_INT64, ['batch', 'sequence']));
  if (options.withTokenTypeIds) graph.message(11, valueInfo('token_type_ids', ONNX_INT64, ['batch', 'sequence']));
  graph.message(12, valueInfo('last_hidden_state', ONNX_FLOAT, ['batch', 'sequence', hidden]));
  return new ProtoWriter()
    .int(1, 8)
    .string(2, 'streamrec-test')
    .message(7, graph)
    .message(8, new ProtoWriter().string(1, '').int(2, 13))
    .finish();
}

// --- tokenizer ------------------------------------------------------------------------------

/** Special tokens of the tiny tokenizer, with fixed ids 0..3. */
export const TINY_SPECIAL_TOKENS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]'] as const;

/**
 * A BERT-style `tokenizer.json` (lowercasing BertNormalizer, BertPreTokenizer, WordPiece with
 * `##` continuation, `[CLS] A [SEP]` template). `words` get ids 4, 5, ... in order.
 */
export function tinyTokenizerJson(words: readonly string[]): Record<string, unknown> {
  const vocab: Record<string, number> = {};
  [...TINY_SPECIAL_TOKENS, ...words].forEach((w, i) => {
    vocab[w] = i;
  });
  const special = (content: string, id: number) => ({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: TINY_SPECIAL_TOKENS.map((t, i) => special(t, i)),
    normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '[CLS]', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '[SEP]', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: '[CLS]', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '[SEP]', type_id: 0 } },
        { Sequence: { id: 'B', type_id: 1 } },
        { SpecialToken: { id: '[SEP]', type_id: 1 } },
      ],
      special_tokens: {
        '[CLS]': { id: '[CLS]', ids: [2], tokens: ['[CLS]'] },
        '[SEP]': { id: '[SEP]', ids: [3], tokens: ['[SEP]'] },
      },
    },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: { type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##', max_input_chars_per_word: 100, vocab },
  };
}

export interface TinyModelDirOptions extends Omit<TinyEncoderOptions, 'vocabSize'> {
  readonly words: readonly string[];
  readonly modelMaxLength?: number;
}

/**
 * Writes `model.onnx`, `tokenizer.json`, `tokenizer_config.json` and `config.json` into `dir`.
 * The embedding table must have `4 + words.length` rows.
 */
export async function writeTinyModelDir(dir: string, options: TinyModelDirOptions): Promise<void> {
  const vocabSize = TINY_SPECIAL_TOKENS.length + options.words.length;
  await fs.mkdir(dir, { recursive: true });
  await fs.writeFile(path.join(dir, 'model.onnx'), buildTinyEncoderOnnx({ ...options, vocabSize }));
  await fs.writeFile(path.join(dir, 'tokenizer.json'), JSON.stringify(tinyTokenizerJson(options.words)));
  await fs.writeFile(
    path.join(dir, 'tokenizer_config.json'),
    JSON.stringify({
      tokenizer_class: 'BertTokenizer',
      model_max_length: options.modelMaxLength ?? 32,
      do_lower_case: true,
      pad_token: '[PAD]',
      unk_token: '[UNK]',
      cls_token: '[CLS]',
      sep_token: '[SEP]',
    }),
  );
  await fs.writeFile(path.join(dir, 'config.json'), JSON.stringify({ model_type: 'bert', hidden_size: options.hidden }));
}
