import type { EnvironmentContext, JestEnvironmentConfig } from '@jest/environment';
import { TestEnvironment } from 'jest-environment-node';

/**
 * Jest's node environment with the host realm's typed-array constructors.
 *
 * Jest runs each test file in its own VM context, whose `Float32Array` differs from the one that
 * native addons use. onnxruntime-node builds its output tensors from addon-made typed arrays and
 * checks them with `instanceof` in the test's realm, which fails ("A float32 tensor's data must be
 * type of function Float32Array()"). Jest already shares `ArrayBuffer` and `Uint8Array` the same
 * way; this shares the rest. Use with a docblock in test files that run ONNX models:
 * `@jest-environment ./features/testing/nativeTypedArraysEnvironment.ts`.
 */
export default class NativeTypedArraysEnvironment extends TestEnvironment {
  constructor(config: JestEnvironmentConfig, context: EnvironmentContext) {
    super(config, context);
    const shared = [
      Int8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array,
      Float32Array, Float64Array, BigInt64Array, BigUint64Array,
    ];
    for (const ctor of shared) this.global[ctor.name] = ctor;
  }
}
