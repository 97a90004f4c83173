#!/usr/bin/env node
'use strict';
// Runs the compiled CLI from dist/ (built by `npm install` through `prepare`, or `npm run build`)
// when it is at least as new as every TypeScript source; otherwise runs the sources through tsx,
// so that a checkout with edited sources never runs stale code.
// TensorFlow's native library prints start-up lines (oneDNN, CPU features) unless told not to
// before it loads; streamrec logs what matters through its own logger.
process.env.TF_CPP_MIN_LOG_LEVEL ??= '2';
// Newer TensorFlow prints its oneDNN lines before reading that; infra/tf.ts says why they are off.
process.env.TF_ENABLE_ONEDNN_OPTS ??= '0';
const path = require('node:path');
const fs = require('node:fs');
const root = path.join(__dirname, '..');
const stamp = path.join(root, 'dist', '.built');
const SOURCE_DIRS = ['schemas', 'datasets', 'ingest', 'features', 'quantizer', 'trainer', 'serving', 'jobs', 'infra', 'cli', 'report'];

function newestSource() {
  let newest = 0;
  const visit = (dir) => {
    let entries;
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) visit(p);
      else if (e.name.endsWith('.ts')) newest = Math.max(newest, fs.statSync(p).mtimeMs);
    }
  };
  for (const d of SOURCE_DIRS) visit(path.join(root, d));
  for (const f of fs.readdirSync(root)) if (f.endsWith('.ts')) newest = Math.max(newest, fs.statSync(path.join(root, f)).mtimeMs);
  return newest;
}

let entry;
if (fs.existsSync(stamp) && fs.statSync(stamp).mtimeMs >= newestSource()) {
  entry = require(path.join(root, 'dist', 'cli', 'main.js'));
} else {
  require('tsx/cjs');
  entry = require(path.join(root, 'cli', 'main.ts'));
}
entry.main(process.argv).catch((err) => {
  process.exitCode = 1;
  console.error(err && err.stack ? err.stack : err);
});
