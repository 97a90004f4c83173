/**
 * The messages between the server's thread and its inference thread (inferenceThread.ts,
 * inferenceWorker.ts). Typed arrays travel by structured clone; answers move their buffers.
 */
import { ArtifactError, BackendError, ConfigError, StreamrecError, ValidationError } from '../../errors';
import type { OnnxEncoderSettings } from './manifest';
import type { OnnxSessionOptions } from './onnxUserEncoder';

export type InferenceRequest =
  | { readonly id: number; readonly op: 'openEncoder'; readonly model: Uint8Array | string; readonly settings: OnnxEncoderSettings; readonly options: OnnxSessionOptions }
  | { readonly id: number; readonly op: 'openScorer'; readonly table: Float32Array; readonly dims: number; readonly threads?: number }
  | { readonly id: number; readonly op: 'encode'; readonly handle: number; readonly size: number; readonly maxLength: number; readonly items: Int32Array; readonly lengths: Int32Array }
  | { readonly id: number; readonly op: 'scores'; readonly handle: number; readonly queries: Float32Array; readonly batch: number }
  | { readonly id: number; readonly op: 'close'; readonly handle: number };

/** An error as it crosses the thread: its class (one of errors.ts's, else Error) and message. */
export interface DescribedError {
  readonly name: string;
  readonly message: string;
}

export type InferenceReply =
  | { readonly id: number; readonly ok: true; readonly handle?: number; readonly maxRowNorm?: number; readonly values?: Float32Array }
  | { readonly id: number; readonly ok: false; readonly error: DescribedError };

/** `array`, or a copy of it alone in its buffer when it is a view of a larger one (which a message would send whole, or a transfer take away). */
export function ownBuffer<T extends Int32Array | Float32Array>(array: T): T {
  return array.byteOffset === 0 && array.byteLength === array.buffer.byteLength ? array : (array.slice() as T);
}

export function describeError(error: unknown): DescribedError {
  return error instanceof Error ? { name: error.name, message: error.message } : { name: 'Error', message: String(error) };
}

const CLASSES: Record<string, new (message: string) => StreamrecError> = { ArtifactError, BackendError, ConfigError, ValidationError };

/** The error again on this side of the thread: the same class for errors.ts's, an Error otherwise. */
export function reviveError(error: DescribedError): Error {
  const Class = CLASSES[error.name];
  if (Class) return new Class(error.message);
  const revived = new Error(error.message);
  revived.name = error.name;
  return revived;
}
