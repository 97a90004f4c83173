import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../../errors';

/**
 * Which native build of hnswlib-node this process runs: the package's own (compiled for baseline
 * x86-64: SSE inner products), or the AVX2 + FMA copy that `scripts/build-hnswlib-avx2.js` builds
 * at `npm install` beside it (`<node_modules>/.streamrec-hnswlib-avx2/`). Both are the same
 * source, so a graph written by one reads in the other; the AVX2 one computes inner products 8
 * floats at a time with fused multiply-adds (float32 sums in another order: the same within
 * rounding), and its searches take ~20-40% less time.
 *
 * `STREAMREC_HNSWLIB` chooses: `auto` (default) the AVX2 build when it is there, stamped for the
 * installed hnswlib-node, and this CPU has AVX2 and FMA, else the portable one; `portable` always
 * the package's; `avx2` the AVX2 build or a ConfigError saying why not. A machine image built on
 * one CPU and run on another is safe: the CPU is checked where the process runs.
 */
export type HnswlibBuildName = 'avx2' | 'portable';

export interface HnswlibBuild {
  readonly name: HnswlibBuildName;
  /** Why this build (for the serving log line and the bench's JSON). */
  readonly reason: string;
  readonly addon: typeof import('hnswlib-node');
}

/** What the choice reads, passed in so that tests can give any machine. */
export interface HnswlibProbe {
  /** `STREAMREC_HNSWLIB`, if set. */
  readonly setting: string | undefined;
  /** hnswlib-node's installed version. */
  readonly version: string;
  /** The AVX2 build's stamp.json, parsed, or undefined when there is none. */
  readonly stamp: { readonly hnswlibNode?: unknown; readonly addon?: unknown } | undefined;
  /** Missing CPU features (empty when the CPU has AVX2 and FMA), or a reason they cannot be read. */
  readonly cpu: readonly string[] | string;
}

/** The build to load, or why the AVX2 one is not: a pure function of the probe. */
export function chooseHnswlib(probe: HnswlibProbe): { readonly name: HnswlibBuildName; readonly reason: string } {
  const setting = probe.setting === undefined || probe.setting === '' ? 'auto' : probe.setting;
  if (setting !== 'auto' && setting !== 'portable' && setting !== 'avx2') {
    throw new ConfigError(`STREAMREC_HNSWLIB: expected auto, portable or avx2, got ${JSON.stringify(probe.setting)}`);
  }
  if (setting === 'portable') return { name: 'portable', reason: 'STREAMREC_HNSWLIB=portable' };
  let missing: string | undefined;
  if (!probe.stamp || typeof probe.stamp.addon !== 'string') missing = 'no AVX2 build (scripts/build-hnswlib-avx2.js did not run or could not build one)';
  else if (probe.stamp.hnswlibNode !== probe.version) {
    missing = `the AVX2 build is of hnswlib-node ${String(probe.stamp.hnswlibNode)}, ${probe.version} is installed (run node scripts/build-hnswlib-avx2.js --force)`;
  } else if (typeof probe.cpu === 'string') missing = probe.cpu;
  else if (probe.cpu.length > 0) missing = `this CPU lacks ${probe.cpu.join(' and ')}`;
  if (missing === undefined) return { name: 'avx2', reason: 'the CPU has AVX2 and FMA' };
  if (setting === 'avx2') throw new ConfigError(`STREAMREC_HNSWLIB=avx2: ${missing}`);
  return { name: 'portable', reason: missing };
}

/**
 * The CPU features the AVX2 build needs that this CPU lacks, from `cpuinfo` (default: read
 * /proc/cpuinfo); on anything but Linux x86-64 a reason instead.
 */
export function missingCpuFeatures(cpuinfo?: string, platform: string = process.platform, arch: string = process.arch): readonly string[] | string {
  if (platform !== 'linux' || arch !== 'x64') return `not Linux x86-64 (${platform} ${arch})`;
  let text = cpuinfo;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/cpuinfo', 'utf8');
    } catch (cause) {
      return `/proc/cpuinfo unreadable (${cause instanceof Error ? cause.message : String(cause)})`;
    }
  }
  const flags = new Set((/^flags\s*:\s*(.*)$/m.exec(text)?.[1] ?? '').split(/\s+/));
  return ['avx2', 'fma'].filter((f) => !flags.has(f));
}

let loaded: HnswlibBuild | undefined;

/**
 * What {@link hnswlib} decides from: this machine's probe, and the AVX2 addon's path (whether or
 * not it would be chosen).
 */
export function probeHnswlib(): { readonly probe: HnswlibProbe; readonly avx2File: string | undefined } {
  const pkgDir = path.dirname(require.resolve('hnswlib-node/package.json'));
  const version = (JSON.parse(readFileSync(path.join(pkgDir, 'package.json'), 'utf8')) as { version: string }).version;
  const buildDir = path.join(path.dirname(pkgDir), '.streamrec-hnswlib-avx2');
  let stamp: HnswlibProbe['stamp'];
  try {
    stamp = JSON.parse(readFileSync(path.join(buildDir, 'stamp.json'), 'utf8')) as HnswlibProbe['stamp'];
  } catch {
    stamp = undefined;
  }
  const avx2File = typeof stamp?.addon === 'string' ? path.join(buildDir, stamp.addon) : undefined;
  return { probe: { setting: process.env.STREAMREC_HNSWLIB, version, stamp, cpu: missingCpuFeatures() }, avx2File };
}

/** The build this process uses (chosen and loaded once). */
export function hnswlib(): HnswlibBuild {
  if (loaded) return loaded;
  const { probe, avx2File } = probeHnswlib();
  const choice = chooseHnswlib(probe);
  if (choice.name === 'avx2' && avx2File) {
    try {
      loaded = { ...choice, addon: require(avx2File) as typeof import('hnswlib-node') };
      return loaded;
    } catch (cause) {
      const why = `the AVX2 build at ${avx2File} does not load (${cause instanceof Error ? cause.message : String(cause)})`;
      if (probe.setting === 'avx2') throw new ConfigError(`STREAMREC_HNSWLIB=avx2: ${why}`, { cause });
      loaded = { name: 'portable', reason: why, addon: require('hnswlib-node') as typeof import('hnswlib-node') };
      return loaded;
    }
  }
  loaded = { ...choice, name: 'portable', addon: require('hnswlib-node') as typeof import('hnswlib-node') };
  return loaded;
}
