import { tf } from '../../infra/tf';
import type { SequenceBatch } from '../../trainer';
import { maxAbsDiff } from './exportEncoder';
import type { UserEncoder } from './userEncoder';

/** Scores closer than this are a tie for the top-10 comparison (float32 user vectors agree to ~1e-7). */
export const TOP10_TIE = 1e-6;

/** Two user-vector engines on the same histories: how far apart their vectors and their top-10s are. */
export interface EncoderComparison {
  readonly users: number;
  /** Largest absolute difference of any user-vector component. */
  readonly maxAbsDiff: number;
  /** Users whose top-10 (over the item table, padding excluded) is the same list, the same set, or the same up to ties within `tie`. */
  readonly sameOrder: number;
  readonly sameSet: number;
  readonly sameUpToTies: number;
  /** Where an order differs, the largest score gap (under `reference`'s vector) between items ranked in another order: a tie at float precision, or not. */
  readonly largestSwapGap: number;
  readonly tie: number;
}

async function encodeAll(engine: UserEncoder, batches: readonly SequenceBatch[], H: number): Promise<Float32Array> {
  const out = new Float32Array(batches.reduce((n, b) => n + b.size, 0) * H);
  let at = 0;
  for (const b of batches) {
    out.set(await engine.encode(b), at);
    at += b.size * H;
  }
  return out;
}

/** Top-10 item ids (1..N) of each user vector against `table` ([N + 1, H], row 0 the padding). */
function top10(vectors: Float32Array, table: tf.Tensor2D, H: number): Int32Array {
  return tf.tidy(() => {
    const scores = tf.matMul(tf.tensor2d(vectors, [vectors.length / H, H]), tf.slice(table, [1, 0], [-1, -1]), false, true); // [U, N]
    return tf.add(tf.topk(scores, 10).indices, 1).dataSync() as Int32Array; // [U * 10]
  });
}

/**
 * Runs `candidate` and `reference` on the same `batches` and compares their user vectors and the
 * top-10 items each vector gets over `itemTable` ([N + 1, H], row 0 the padding; not disposed).
 * The check of an exported encoder against the model it came from (`npm run bench -- onnx`, the
 * Scientific parity test).
 */
export async function compareUserEncoders(
  candidate: UserEncoder,
  reference: UserEncoder,
  batches: readonly SequenceBatch[],
  itemTable: tf.Tensor2D,
  tie = TOP10_TIE,
): Promise<EncoderComparison> {
  const H = itemTable.shape[1];
  const [a, b] = [await encodeAll(candidate, batches, H), await encodeAll(reference, batches, H)];
  const users = a.length / H;
  const [topA, topB] = [top10(a, itemTable, H), top10(b, itemTable, H)];
  const host = itemTable.dataSync() as Float32Array;
  const score = (u: number, i: number): number => {
    let s = 0;
    for (let h = 0; h < H; h++) s += (b[u * H + h] as number) * (host[i * H + h] as number);
    return s;
  };
  let sameOrder = 0;
  let sameSet = 0;
  let sameUpToTies = 0;
  let largestSwapGap = 0;
  for (let u = 0; u < users; u++) {
    const x = Array.from(topA.subarray(u * 10, u * 10 + 10));
    const y = Array.from(topB.subarray(u * 10, u * 10 + 10));
    if (new Set([...x, ...y]).size === 10) sameSet++;
    if (x.every((v, i) => v === y[i])) {
      sameOrder++;
      sameUpToTies++;
      continue;
    }
    const gap = Math.max(...x.map((v, i) => Math.abs(score(u, v) - score(u, y[i] as number))));
    largestSwapGap = Math.max(largestSwapGap, gap);
    if (gap <= tie) sameUpToTies++;
  }
  return { users, maxAbsDiff: maxAbsDiff(a, b), sameOrder, sameSet, sameUpToTies, largestSwapGap, tie };
}
