import { createHash } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import path from 'node:path';
import type { InferenceSession, Tensor } from 'onnxruntime-node';
import { ArtifactError, BackendError, ConfigError } from '../errors';
import { createLogger } from '../logging';
import {
  fittedFingerprint,
  specFingerprint,
  type EncodeOptions,
  type EncoderState,
  type FittedTextEncoder,
  type TextEncoderSpec,
} from './encoder';
import { createMatrix, l2NormalizeRows, type Matrix } from '../infra/matrix';

/**
 * `onnx`: a user-supplied sentence encoder exported to ONNX (MiniLM, BGE, E5, sentence-T5's
 * encoder ...), run with onnxruntime-node on the CPU, tokenised with @huggingface/transformers
 * from local files only (no hub access).
 *
 * The model directory holds `model.onnx` (or `onnx/model.onnx`, the transformers.js layout),
 * `tokenizer.json` and `tokenizer_config.json`. Inputs are fed by name as the model declares them:
 * `input_ids`, `attention_mask`, and `token_type_ids` (zeros) only when declared; int64 or int32
 * as declared. Output: `last_hidden_state` (or `token_embeddings`, or the first output; or the one
 * named in settings) [B, T, H] is mean-pooled over the attention mask; an output that is already
 * pooled [B, H] is used as is. Rows are then L2-normalised. Empty texts give zero rows. Texts are
 * batched by similar length to keep padding small. Stateless: `fit` returns the encoder itself.
 */

const log = createLogger('features.onnx');
const STATE_FORMAT = 1;
const DEFAULT_MAX_LENGTH = 512;

export interface OnnxSettings {
  readonly modelDir: string;
  /** Longest token sequence; 0 = the tokenizer's model_max_length (at most 512). */
  readonly maxLength: number;
  readonly batchSize: number;
  /** Output to pool, or 'auto'. */
  readonly output: string;
  /** ORT intra-op threads; 0 = ORT's default. */
  readonly threads: number;
}

async function fileSha256(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

async function findFile(dir: string, candidates: string[], what: string): Promise<string> {
  for (const c of candidates) {
    const file = path.join(dir, c);
    try {
      if ((await fs.stat(file)).isFile()) return file;
    } catch {
      // try the next candidate
    }
  }
  throw new ConfigError(`onnx encoder: ${what} not found in ${dir} (looked for ${candidates.join(', ')})`, { context: { path: dir } });
}

type TensorInput = { name: string; type: 'int64' | 'int32' };

/** The part of a transformers.js tokenizer used here (a batch call returning plain arrays). */
interface BatchTokenizer {
  (
    texts: string[],
    options: { add_special_tokens: boolean; padding: false; truncation: false; return_tensor: false },
  ): { input_ids: number[][] };
  readonly model_max_length: unknown;
  readonly pad_token_id: unknown;
}

/**
 * Token ids of `texts` with the model's special tokens, at most `maxLength` long. Long texts are
 * cut in their content, keeping the special tokens around it (as Python's tokenizers do;
 * transformers.js would cut the closing `[SEP]`/`</s>` off). [b][<= maxLength]
 */
function tokenizeWithin(tokenizer: BatchTokenizer, texts: string[], maxLength: number): number[][] {
  const plain = { padding: false, truncation: false, return_tensor: false } as const;
  const full = tokenizer(texts, { ...plain, add_special_tokens: true }).input_ids;
  return full.map((ids, i) => {
    if (ids.length <= maxLength) return ids;
    const content = tokenizer([texts[i] as string], { ...plain, add_special_tokens: false }).input_ids[0] ?? [];
    const specials = ids.length - content.length;
    // Where the content starts: the prefix of special tokens (e.g. [CLS]); the rest is the suffix.
    let prefix = 0;
    while (prefix < specials && ids[prefix] !== content[0]) prefix++;
    const keep = Math.max(0, maxLength - specials);
    return [...ids.slice(0, prefix), ...content.slice(0, keep), ...ids.slice(prefix + content.length)].slice(0, maxLength);
  });
}

class OnnxEncoder implements FittedTextEncoder {
  readonly name = 'onnx';
  private readonly fp: string;

  constructor(
    specFp: string,
    private readonly ort: typeof import('onnxruntime-node'),
    private readonly session: InferenceSession,
    private readonly tokenizer: BatchTokenizer,
    private readonly inputs: readonly TensorInput[],
    private readonly outputName: string,
    readonly dims: number,
    private readonly maxLength: number,
    private readonly batchSize: number,
  ) {
    this.fp = fittedFingerprint(specFp, this.state());
  }

  fingerprint(): string {
    return this.fp;
  }

  state(): EncoderState {
    return { encoder: 'onnx', format: STATE_FORMAT, params: {}, arrays: {} };
  }

  async encode(texts: readonly string[], options: EncodeOptions = {}): Promise<Matrix> {
    const out = createMatrix(texts.length, this.dims); // [N, H]
    const order = texts
      .map((_, i) => i)
      .filter((i) => (texts[i] as string).length > 0)
      .sort((a, b) => (texts[a] as string).length - (texts[b] as string).length);
    let done = texts.length - order.length;
    for (let start = 0; start < order.length; start += this.batchSize) {
      const batch = order.slice(start, start + this.batchSize);
      const pooled = await this.encodeBatch(batch.map((i) => texts[i] as string)); // [b, H]
      batch.forEach((row, b) => out.data.set(pooled.data.subarray(b * this.dims, (b + 1) * this.dims), row * this.dims));
      done += batch.length;
      options.onProgress?.(done, texts.length);
    }
    if (order.length === 0) options.onProgress?.(texts.length, texts.length);
    return l2NormalizeRows(out);
  }

  /** texts [b] -> mean-pooled [b, H] (not yet normalised). */
  private async encodeBatch(texts: string[]): Promise<Matrix> {
    const ids = tokenizeWithin(this.tokenizer, texts, this.maxLength); // [b][<= maxLength]
    const b = ids.length;
    const t = Math.max(...ids.map((row) => row.length)); // padded length T
    const padId = typeof this.tokenizer.pad_token_id === 'number' ? this.tokenizer.pad_token_id : 0;
    const feeds: Record<string, Tensor> = {};
    for (const input of this.inputs) {
      // [b, T]: ids right-padded with the pad id; mask 1 on real tokens; token_type_ids zeros.
      const data = input.type === 'int64' ? new BigInt64Array(b * t) : new Int32Array(b * t);
      const put = (at: number, v: number) => {
        if (data instanceof BigInt64Array) data[at] = BigInt(v);
        else data[at] = v;
      };
      ids.forEach((row, r) => {
        for (let c = 0; c < t; c++) {
          if (input.name === 'input_ids') put(r * t + c, c < row.length ? (row[c] as number) : padId);
          else if (input.name === 'attention_mask') put(r * t + c, c < row.length ? 1 : 0);
        }
      });
      feeds[input.name] = new this.ort.Tensor(input.type, data, [b, t]);
    }
    const result = await this.session.run(feeds);
    const output = result[this.outputName];
    if (!output || output.type !== 'float32') {
      throw new BackendError(`onnx encoder: output ${this.outputName} is missing or not float32 (got ${output?.type ?? 'nothing'})`);
    }
    const values = output.data as Float32Array;
    const pooled = createMatrix(b, this.dims);
    if (output.dims.length === 2) {
      pooled.data.set(values.subarray(0, b * this.dims));
      return pooled;
    }
    const steps = output.dims[1] as number; // [b, T, H]
    for (let r = 0; r < b; r++) {
      const length = Math.min((ids[r] as number[]).length, steps);
      let count = 0;
      for (let s = 0; s < length; s++) {
        count++;
        const base = (r * steps + s) * this.dims;
        for (let h = 0; h < this.dims; h++) pooled.data[r * this.dims + h] = (pooled.data[r * this.dims + h] as number) + (values[base + h] as number);
      }
      for (let h = 0; h < this.dims; h++) pooled.data[r * this.dims + h] = (pooled.data[r * this.dims + h] as number) / Math.max(count, 1);
    }
    return pooled;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

/** Loads the model and tokenizer of `settings.modelDir` (see the module comment). */
export async function onnxSpec(settings: OnnxSettings): Promise<TextEncoderSpec> {
  if (!settings.modelDir) {
    throw new ConfigError('onnx encoder: features.onnx.modelDir is empty; set it to a directory with model.onnx and tokenizer.json');
  }
  const dir = path.resolve(settings.modelDir);
  const modelFile = await findFile(dir, ['model.onnx', path.join('onnx', 'model.onnx')], 'the ONNX model');
  const tokenizerFile = await findFile(dir, ['tokenizer.json'], 'tokenizer.json');
  const tokenizerConfigFile = await findFile(dir, ['tokenizer_config.json'], 'tokenizer_config.json');

  const ort = await import('onnxruntime-node');
  const { AutoTokenizer } = await import('@huggingface/transformers');
  let tokenizer: BatchTokenizer;
  try {
    tokenizer = (await AutoTokenizer.from_pretrained(dir, { local_files_only: true })) as unknown as BatchTokenizer;
  } catch (cause) {
    throw new ConfigError(`onnx encoder: cannot load the tokenizer from ${dir}`, { cause, context: { path: dir } });
  }
  let session: InferenceSession;
  try {
    session = await ort.InferenceSession.create(modelFile, {
      graphOptimizationLevel: 'all',
      logSeverityLevel: 3,
      ...(settings.threads > 0 ? { intraOpNumThreads: settings.threads } : {}),
    });
  } catch (cause) {
    throw new ConfigError(`onnx encoder: onnxruntime cannot load ${modelFile}`, { cause, context: { path: modelFile } });
  }

  const inputs: TensorInput[] = session.inputMetadata.map((m) => {
    const type = m.isTensor ? m.type : undefined;
    if (!['input_ids', 'attention_mask', 'token_type_ids'].includes(m.name) || (type !== 'int64' && type !== 'int32')) {
      throw new ConfigError(
        `onnx encoder: ${modelFile} declares input ${m.name} (${type ?? 'non-tensor'}); supported are int64/int32 ` +
          'input_ids, attention_mask and token_type_ids',
      );
    }
    return { name: m.name, type };
  });
  if (!inputs.some((i) => i.name === 'input_ids')) throw new ConfigError(`onnx encoder: ${modelFile} has no input_ids input`);
  const outputName =
    settings.output !== 'auto'
      ? settings.output
      : (['last_hidden_state', 'token_embeddings'].find((n) => session.outputNames.includes(n)) ?? session.outputNames[0]);
  const outputMeta = session.outputMetadata.find((m) => m.name === outputName);
  if (outputName === undefined || !outputMeta || !outputMeta.isTensor) {
    throw new ConfigError(`onnx encoder: output ${String(outputName)} is not a tensor output of ${modelFile} (has ${session.outputNames.join(', ')})`);
  }
  const declared = outputMeta.shape[outputMeta.shape.length - 1];
  const modelMax = Number(tokenizer.model_max_length);
  const modelLimit = Number.isFinite(modelMax) && modelMax > 0 ? modelMax : Infinity;
  const maxLength = Math.min(settings.maxLength > 0 ? settings.maxLength : DEFAULT_MAX_LENGTH, modelLimit);

  const lineage = {
    model: await fileSha256(modelFile),
    tokenizer: await fileSha256(tokenizerFile),
    tokenizerConfig: await fileSha256(tokenizerConfigFile),
    output: outputName,
    pooling: outputMeta.shape.length === 2 ? 'none' : 'mean',
    normalize: 'l2',
    maxLength,
  };
  const fp = specFingerprint('onnx', lineage);
  const make = (dims: number) => new OnnxEncoder(fp, ort, session, tokenizer, inputs, outputName, dims, maxLength, Math.max(1, settings.batchSize));
  let encoder: OnnxEncoder;
  if (typeof declared === 'number' && declared > 0) encoder = make(declared);
  else {
    // Symbolic hidden size: find it with one run on a single token.
    const feeds = Object.fromEntries(
      inputs.map((i) => [i.name, new ort.Tensor(i.type, i.type === 'int64' ? new BigInt64Array(1) : new Int32Array(1), [1, 1])]),
    );
    const dims = (await session.run(feeds))[outputName]?.dims;
    if (!dims || dims.length < 2) throw new ConfigError(`onnx encoder: cannot determine the hidden size of output ${outputName}`);
    encoder = make(dims[dims.length - 1] as number);
  }
  log.info({ modelDir: dir, inputs: inputs.map((i) => i.name), output: outputName, dims: encoder.dims, maxLength }, 'onnx encoder loaded');

  return {
    name: 'onnx',
    fingerprint: () => fp,
    settings: () => ({ ...lineage, modelDir: dir }),
    async fit(): Promise<FittedTextEncoder> {
      return encoder;
    },
    async restore(state: EncoderState): Promise<FittedTextEncoder> {
      if (state.encoder !== 'onnx' || state.format !== STATE_FORMAT) {
        throw new ArtifactError(`onnx: stored encoder state is for ${state.encoder} format ${state.format}, not onnx format ${STATE_FORMAT}`);
      }
      return encoder;
    },
    async dispose(): Promise<void> {
      await encoder.release();
    },
  };
}
