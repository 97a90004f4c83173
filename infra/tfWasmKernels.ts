/**
 * Kernels the TF.js wasm backend lacks but streamrec's models need. Registered by
 * `initTf()` before the wasm backend is selected.
 *
 * TODO(trainer): UnsortedSegmentSum (the gradient of gather/embedding lookups).
 */
export function registerWasmExtraKernels(): void {}
