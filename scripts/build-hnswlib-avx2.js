#!/usr/bin/env node
/**
 * Builds a second copy of hnswlib-node's native addon with AVX2 and FMA enabled, beside the
 * package (`<node_modules>/.streamrec-hnswlib-avx2/`), for serving/ann/hnswlib.ts to load on CPUs
 * that have them.
 *
 * Why: hnswlib-node is compiled for the baseline x86-64 (SSE), so hnswlib's inner products run 4
 * floats at a time; hnswlib itself has AVX kernels, used only when the compiler is allowed them.
 * On the bench's 100,000-item model index (64 dims) a search at ef 66 takes ~20% less time, and a
 * repeated one ~40% less (`.scratch` probe; docs/serving.md). The portable build stays what
 * `require('hnswlib-node')` loads: a machine (or container) without AVX2 uses it.
 *
 * Steps: skip unless Linux x86-64 with `avx2` and `fma` in /proc/cpuinfo; copy the package's
 * sources; write a binding.gyp with `-O3 -mavx2 -mfma`; run node-gyp (npm's, or the one on PATH;
 * Node's system headers when present, so nothing is downloaded); check the result against exact
 * inner products on random vectors; then write `stamp.json` (hnswlib-node's version, the flags).
 * The loader uses the build only with a stamp for the installed version.
 *
 *   node scripts/build-hnswlib-avx2.js [--best-effort] [--force]
 *
 * --best-effort (npm's postinstall): a step that fails prints why and exits 0, since the portable
 * build works everywhere. --force: rebuild even when a stamped build exists.
 */
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const FLAGS = ['-O3', '-mavx2', '-mfma'];
const bestEffort = process.argv.includes('--best-effort');
const force = process.argv.includes('--force');
const say = (message) => process.stderr.write(`[build-hnswlib-avx2] ${message}\n`);

function skip(message) {
  say(`${message}; hnswlib runs its portable (SSE) build`);
  process.exit(bestEffort ? 0 : 1);
}

function cpuHasAvx2() {
  if (process.platform !== 'linux' || process.arch !== 'x64') return `not Linux x86-64 (${process.platform} ${process.arch})`;
  let info;
  try {
    info = fs.readFileSync('/proc/cpuinfo', 'utf8');
  } catch (cause) {
    return `/proc/cpuinfo unreadable (${cause.message})`;
  }
  const flags = new Set((/^flags\s*:\s*(.*)$/m.exec(info)?.[1] ?? '').split(/\s+/));
  const missing = ['avx2', 'fma'].filter((f) => !flags.has(f));
  return missing.length === 0 ? undefined : `this CPU lacks ${missing.join(' and ')}`;
}

function nodeGyp() {
  const candidates = [
    process.env.npm_config_node_gyp,
    path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  ].filter(Boolean);
  for (const file of candidates) if (fs.existsSync(file)) return [process.execPath, file];
  try {
    execFileSync('node-gyp', ['--version'], { stdio: 'ignore' });
    return ['node-gyp'];
  } catch {
    return undefined;
  }
}

/** Top-10 of `queries` against `vectors` with `addon`, checked against exact inner products. */
function verify(addon, dims) {
  const N = 2000;
  let state = 0x9e3779b9;
  const random = () => {
    // xorshift32: the same vectors on every machine
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 2 ** 31 - 1;
  };
  const vectors = Array.from({ length: N }, () => Array.from({ length: dims }, random));
  const index = new addon.HierarchicalNSW('ip', dims);
  index.initIndex({ maxElements: N, m: 16, efConstruction: 100, randomSeed: 7 });
  vectors.forEach((v, i) => index.addPoint(v, i));
  index.setEf(200);
  let found = 0;
  for (let q = 0; q < 100; q++) {
    const query = Array.from({ length: dims }, random);
    const exact = vectors.map((v, i) => [i, v.reduce((s, x, d) => s + x * query[d], 0)]).sort((a, b) => b[1] - a[1]);
    const want = new Set(exact.slice(0, 10).map(([i]) => i));
    const { neighbors, distances } = index.searchKnn(query, 10);
    neighbors.forEach((id, j) => {
      const dot = vectors[id].reduce((s, x, d) => s + x * query[d], 0);
      if (Math.abs(1 - dot - distances[j]) > 1e-3 * Math.max(1, Math.abs(dot))) throw new Error(`item ${id}: distance ${distances[j]}, exact ${1 - dot}`);
      if (want.has(id)) found++;
    });
  }
  if (found / 1000 < 0.95) throw new Error(`recall@10 ${found / 1000} against exact search on random vectors (expected >= 0.95)`);
  return found / 1000;
}

function main() {
  let pkgDir;
  try {
    pkgDir = path.dirname(require.resolve('hnswlib-node/package.json', { paths: [path.join(__dirname, '..')] }));
  } catch {
    skip('hnswlib-node is not installed');
  }
  const version = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8')).version;
  const outDir = path.join(path.dirname(pkgDir), '.streamrec-hnswlib-avx2');
  const stampFile = path.join(outDir, 'stamp.json');
  if (!force) {
    const stamp = readStamp(stampFile);
    if (stamp && stamp.hnswlibNode === version && JSON.stringify(stamp.flags) === JSON.stringify(FLAGS) && typeof stamp.addon === 'string' && fs.existsSync(path.join(outDir, stamp.addon))) {
      say(`AVX2 build of hnswlib-node ${version} already there (${outDir})`);
      return;
    }
  }
  const unsupported = cpuHasAvx2();
  if (unsupported) skip(unsupported);
  const gyp = nodeGyp();
  if (!gyp) skip('node-gyp not found');
  let addonApi;
  try {
    // The package's directory, absolute (its `include_dir` is relative to the working directory).
    addonApi = path.dirname(require.resolve('node-addon-api/package.json', { paths: [pkgDir] }));
  } catch {
    skip('node-addon-api (hnswlib-node\'s build dependency) not found');
  }

  fs.rmSync(outDir, { recursive: true, force: true });
  fs.mkdirSync(outDir, { recursive: true });
  fs.cpSync(path.join(pkgDir, 'src'), path.join(outDir, 'src'), { recursive: true });
  const binding = {
    targets: [
      {
        target_name: 'addon',
        sources: ['src/addon.cc'],
        include_dirs: [addonApi],
        defines: ['NAPI_DISABLE_CPP_EXCEPTIONS'],
        'cflags!': ['-fno-exceptions'],
        'cflags_cc!': ['-fno-exceptions'],
        cflags_cc: FLAGS,
      },
    ],
  };
  fs.writeFileSync(path.join(outDir, 'binding.gyp'), JSON.stringify(binding, null, 2));
  const args = ['rebuild'];
  // The running Node's own headers when it has them (/usr for Debian's nodejs, /usr/local in the
  // node images), so node-gyp downloads nothing; else node-gyp finds or fetches them as for
  // hnswlib-node itself.
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  if (!process.env.npm_config_nodedir && fs.existsSync(path.join(prefix, 'include', 'node', 'node.h'))) args.push(`--nodedir=${prefix}`);
  say(`compiling hnswlib-node ${version} with ${FLAGS.join(' ')}`);
  try {
    execFileSync(gyp[0], [...gyp.slice(1), ...args], { cwd: outDir, stdio: ['ignore', 'ignore', 'pipe'], timeout: 300_000 });
  } catch (cause) {
    fs.rmSync(outDir, { recursive: true, force: true });
    const stderr = String(cause.stderr ?? '');
    const log = path.join(os.tmpdir(), `streamrec-hnswlib-avx2-${process.pid}.log`);
    try {
      fs.writeFileSync(log, stderr);
    } catch {
      // the reason below still says what failed
    }
    // node-gyp ends with the same footer whatever failed (versions, cwd, "not ok"): keep the lines before it.
    const footer = /^gyp ERR! (System|command|cwd|node -v|node-gyp -v|not ok)/;
    const lines = stderr.split('\n').map((l) => l.trim()).filter((l) => l && !footer.test(l) && !l.startsWith('gyp info'));
    const how = cause.signal ? `killed by ${cause.signal}${cause.code === 'ETIMEDOUT' ? ' (timed out after 300 s)' : ''}` : `exit ${cause.status ?? cause.code}`;
    skip(`node-gyp failed (${how}): ${lines.slice(-4).join(' | ') || cause.message}; its output: ${log}`);
  }
  const addonFile = path.join('build', 'Release', 'addon.node');
  let recall;
  try {
    // In a process of its own: a broken native build crashes (SIGILL, SIGSEGV) rather than throws.
    const out = execFileSync(process.execPath, [__filename, '--verify', path.join(outDir, addonFile)], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 });
    recall = JSON.parse(String(out)).recall;
  } catch (cause) {
    fs.rmSync(outDir, { recursive: true, force: true });
    const why = cause.signal ? `killed by ${cause.signal}` : String(cause.stderr ?? cause.message).trim().split('\n').pop();
    skip(`the AVX2 build failed its check: ${why}`);
  }
  fs.rmSync(path.join(outDir, 'build', 'Release', 'obj.target'), { recursive: true, force: true });
  // Written then renamed: a stamp is whole or absent (the loader trusts the build only with one).
  const stamp = JSON.stringify({ hnswlibNode: version, flags: FLAGS, addon: addonFile, builtAt: new Date().toISOString(), checkRecallAt10: recall }, null, 2);
  fs.writeFileSync(`${stampFile}.tmp`, stamp);
  fs.renameSync(`${stampFile}.tmp`, stampFile);
  say(`AVX2 build of hnswlib-node ${version} ready (${outDir}; check recall@10 ${recall})`);
}

/** The stamp of an earlier build, or undefined when there is none or it does not parse. */
function readStamp(file) {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
}

const verifyAt = process.argv.indexOf('--verify');
if (verifyAt >= 0) {
  // The child of main(): check the addon at the given path, print {"recall"}, exit non-zero (or crash) when it is wrong.
  process.stdout.write(JSON.stringify({ recall: verify(require(process.argv[verifyAt + 1]), 64) }));
} else {
  try {
    main();
  } catch (cause) {
    // Anything unforeseen (a full disk, a permission): the portable build still works.
    skip(`unexpected failure: ${cause && cause.message ? cause.message : String(cause)}`);
  }
}
