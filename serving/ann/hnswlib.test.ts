import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { HierarchicalNSW } from 'hnswlib-node';
import { ConfigError } from '../../errors';
import { Random } from '../../random';
import { chooseHnswlib, hnswlib, missingCpuFeatures, probeHnswlib, type HnswlibProbe } from './hnswlib';
import { HnswIndex } from './hnsw';
import { clusteredUnitVectors } from './synthetic';

const stamped: HnswlibProbe = { setting: undefined, version: '3.0.0', stamp: { hnswlibNode: '3.0.0', addon: 'build/Release/addon.node' }, cpu: [] };

describe('chooseHnswlib', () => {
  it('takes the AVX2 build when it is stamped for the installed version and the CPU has AVX2 and FMA', () => {
    expect(chooseHnswlib(stamped).name).toBe('avx2');
    expect(chooseHnswlib({ ...stamped, setting: 'auto' }).name).toBe('avx2');
    expect(chooseHnswlib({ ...stamped, setting: 'avx2' }).name).toBe('avx2');
  });

  it.each<[string, Partial<HnswlibProbe>, RegExp]>([
    ['no build', { stamp: undefined }, /no AVX2 build/],
    ['a stamp without its addon', { stamp: { hnswlibNode: '3.0.0' } }, /no AVX2 build/],
    ['a build of another version', { stamp: { hnswlibNode: '2.9.0', addon: 'a.node' } }, /hnswlib-node 2\.9\.0, 3\.0\.0 is installed.*--force/],
    ['a CPU without AVX2', { cpu: ['avx2'] }, /this CPU lacks avx2/],
    ['a CPU without either', { cpu: ['avx2', 'fma'] }, /lacks avx2 and fma/],
    ['another platform', { cpu: 'not Linux x86-64 (darwin arm64)' }, /darwin arm64/],
  ])('falls back to the portable build with %s, saying why', (_, change, reason) => {
    const choice = chooseHnswlib({ ...stamped, ...change });
    expect(choice.name).toBe('portable');
    expect(choice.reason).toMatch(reason);
    // Forced, the same reason is an error instead.
    expect(() => chooseHnswlib({ ...stamped, ...change, setting: 'avx2' })).toThrow(ConfigError);
    expect(() => chooseHnswlib({ ...stamped, ...change, setting: 'avx2' })).toThrow(reason);
  });

  it('keeps the portable build when told to, and rejects an unknown setting', () => {
    expect(chooseHnswlib({ ...stamped, setting: 'portable' })).toEqual({ name: 'portable', reason: 'STREAMREC_HNSWLIB=portable' });
    expect(() => chooseHnswlib({ ...stamped, setting: 'sse' })).toThrow('STREAMREC_HNSWLIB: expected auto, portable or avx2, got "sse"');
  });
});

describe('missingCpuFeatures', () => {
  it('reads the flags line of /proc/cpuinfo', () => {
    expect(missingCpuFeatures('processor\t: 0\nflags\t\t: fpu sse sse2 avx avx2 fma bmi2\n', 'linux', 'x64')).toEqual([]);
    expect(missingCpuFeatures('flags\t\t: fpu sse sse2 avx fma\n', 'linux', 'x64')).toEqual(['avx2']);
    expect(missingCpuFeatures('model name: x\n', 'linux', 'x64')).toEqual(['avx2', 'fma']);
  });
  it('names the platform elsewhere', () => {
    expect(missingCpuFeatures('flags: avx2 fma', 'darwin', 'arm64')).toBe('not Linux x86-64 (darwin arm64)');
    expect(missingCpuFeatures('flags: avx2 fma', 'linux', 'arm64')).toBe('not Linux x86-64 (linux arm64)');
  });
});

describe('the build this process loads', () => {
  it('is the one chooseHnswlib picks for this machine, and builds a working index', async () => {
    const { probe } = probeHnswlib();
    const build = hnswlib();
    expect(build.name).toBe(chooseHnswlib(probe).name);
    expect(build.reason.length).toBeGreaterThan(0);
    const index = await HnswIndex.build(clusteredUnitVectors(300, 16, new Random(3)));
    const [hits] = index.search(clusteredUnitVectors(1, 16, new Random(4)).data, 5);
    expect(hits?.ids.length).toBe(5);
  });

  // Where the AVX2 build is there and this CPU can run it (CI's machines: postinstall builds it,
  // and .ci/run sets STREAMREC_REQUIRE_HNSWLIB_AVX2 there), it must answer as the portable one
  // does: the same neighbours, the same distances within float32 rounding, and a graph written
  // by either reads in the other. Elsewhere the portable build is the one in use.
  it('AVX2 and portable builds give the same searches and read each other\'s graphs', () => {
    const { avx2File } = probeHnswlib();
    const cpu = missingCpuFeatures();
    const runnable = avx2File !== undefined && Array.isArray(cpu) && cpu.length === 0;
    if (process.env.STREAMREC_REQUIRE_HNSWLIB_AVX2 === '1') expect({ avx2File, cpu }).toEqual({ avx2File: expect.any(String), cpu: [] });
    if (!runnable) {
      expect(hnswlib().name).toBe('portable');
      return;
    }
    const portable = require('hnswlib-node') as typeof import('hnswlib-node');
    const avx2 = require(avx2File) as typeof import('hnswlib-node');
    const D = 64;
    const N = 3000;
    const vectors = clusteredUnitVectors(N, D, new Random(11));
    const queries = clusteredUnitVectors(200, D, new Random(12));
    const build = (addon: typeof import('hnswlib-node')): HierarchicalNSW => {
      const g = new addon.HierarchicalNSW('ip', D);
      g.initIndex({ maxElements: N, m: 16, efConstruction: 100, randomSeed: 100 });
      for (let i = 0; i < N; i++) g.addPoint(Array.from(vectors.data.subarray(i * D, (i + 1) * D)), i + 1);
      g.setEf(100);
      return g;
    };
    const built = { portable: build(portable), avx2: build(avx2) };
    const dir = mkdtempSync(path.join(os.tmpdir(), 'hnswlib-builds-'));
    try {
      // Each build's graph read back by the other.
      const readBy = (writer: keyof typeof built, addon: typeof import('hnswlib-node')): HierarchicalNSW => {
        const file = path.join(dir, `${writer}.bin`);
        built[writer].writeIndexSync(file);
        const g = new addon.HierarchicalNSW('ip', D);
        g.readIndexSync(file);
        g.setEf(100);
        return g;
      };
      const pairs: Array<[HierarchicalNSW, HierarchicalNSW]> = [
        [built.portable, readBy('portable', avx2)],
        [built.avx2, readBy('avx2', portable)],
      ];
      let same = 0;
      const readBack = [2000, 2000];
      for (let q = 0; q < 200; q++) {
        const query = Array.from(queries.data.subarray(q * D, (q + 1) * D));
        const x = built.portable.searchKnn(query, 10);
        const y = built.avx2.searchKnn(query, 10);
        const shared = new Set(x.neighbors);
        same += y.neighbors.filter((id) => shared.has(id)).length;
        // One graph read by the other build: the same walk (the same hits), distances equal within float32 rounding.
        pairs.forEach(([written, read], p) => {
          const a = written.searchKnn(query, 10);
          const b = read.searchKnn(query, 10);
          const distance = new Map(a.neighbors.map((id, j) => [id, a.distances[j] as number]));
          b.neighbors.forEach((id, j) => {
            if (distance.has(id)) expect(Math.abs((b.distances[j] as number) - (distance.get(id) as number))).toBeLessThan(1e-5);
            else readBack[p] = (readBack[p] as number) - 1;
          });
        });
      }
      expect(same / 2000).toBeGreaterThanOrEqual(0.99);
      for (const r of readBack) expect(r / 2000).toBeGreaterThanOrEqual(0.995);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
