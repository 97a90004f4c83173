import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { initTf } from '../infra/tf';
import { unsortedSegmentSumValues } from '../infra/tfWasmKernels';
import { backendCheck, type BackendCheckResult } from './testing/backendCheckCases';

/**
 * The wasm backend with streamrec's extra kernels. initTf() picks one backend per process, so
 * the wasm half runs in a child process (STREAMREC_TF_BACKEND=wasm) and is compared with the
 * same computations on this process's backend (tfjs-node where installed).
 */
describe('wasm backend', () => {
  it('the JS UnsortedSegmentSum sums rows into segments and drops out-of-range ids', () => {
    const out = new Float32Array(6);
    unsortedSegmentSumValues(Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8]), 8, Int32Array.from([2, 0, 2, -1]), 3, out);
    expect(Array.from(out)).toEqual([3, 4, 0, 0, 6, 8]);
  });

  it('computes the embedding gradient and one-hots as the native backend does, and trains both models one step with the same losses', async () => {
    const here = await initTf();
    const expected = backendCheck();
    const child = spawnSync(process.execPath, ['--import', 'tsx', path.join(__dirname, 'testing', 'backendCheck.ts')], {
      cwd: path.join(__dirname, '..'),
      env: { ...process.env, STREAMREC_TF_BACKEND: 'wasm', STREAMREC_LOG_LEVEL: 'silent' },
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(child.stderr.includes('Error') ? child.stderr : '').toBe('');
    expect(child.status).toBe(0);
    const lines = child.stdout.trim().split('\n');
    const wasm = JSON.parse(lines[lines.length - 1] as string) as BackendCheckResult & { backend: string };
    expect(wasm.backend).toBe('wasm');
    // Rows 1, 2, 2, 4, 0, 2 of a [5, 3] table are gathered against weight rows w0..w5 =
    // [-2,-1,0] [1,2,-2] [-1,0,1] [2,-2,-1] [0,1,2] [-2,-1,0]: row r's gradient sums the weight rows
    // of the positions that read it (row 2: w1 + w2 + w5; row 3: none).
    const byHand = [0, 1, 2, -2, -1, 0, -2, 1, -1, 0, 0, 0, 2, -2, -1];
    expect(expected.embeddingGradient).toEqual(byHand);
    expect(wasm.embeddingGradient).toEqual(byHand);
    // tfjs-backend-wasm's native OneHot writes int32 bits even for float32 (replaced in tfWasmKernels).
    expect(wasm.oneHot).toEqual({ float: [0, 0, 1, 1, 0, 0, 0, 0, 0], int: [0, 0, 1, 1, 0, 0, 0, 0, 0] });
    expect(expected.oneHot).toEqual(wasm.oneHot);
    // Ties and NaN count against the target. Row 0: target 4 ties at 0.9 with 2 (excluded) and 6
    // -> rank 1. Row 1: target 3 (0.2) is behind item 4 (0.3) and the tied 1 and 2; 5 is excluded
    // -> rank 3. Row 2: target 1 (0.2) is behind the NaN item 2, item 3 (0.4) and the tied 4 and
    // 6; the NaN padding never competes -> rank 4. Row 3: a NaN target -> the worst rank, 5.
    expect(wasm.ranks).toEqual([1, 3, 4, 5]);
    expect(expected.ranks).toEqual(wasm.ranks);
    for (const type of ['sasrec', 'ccfrec']) {
      const w = wasm.models[type]!;
      const e = expected.models[type]!;
      expect(w.applied).toBe(true);
      expect(w.leaked).toBe(0);
      expect(w.lossAfter).toBeLessThan(w.lossBefore);
      // Same seeds, same math: the losses agree across backends up to float rounding.
      expect(Math.abs(w.lossBefore - e.lossBefore)).toBeLessThan(1e-3 * Math.max(1, e.lossBefore));
      expect(Math.abs(w.lossAfter - e.lossAfter)).toBeLessThan(1e-2 * Math.max(1, e.lossAfter));
    }
    process.stderr.write(`wasm check: this process ran ${here.backend}\n`);
  });
});
