#!/usr/bin/env node
'use strict';
// Runs the compiled CLI (npm install runs `prepare`, which builds dist/).
// From a source checkout without a build, fall back to tsx.
const path = require('node:path');
const fs = require('node:fs');
const compiled = path.join(__dirname, '..', 'dist', 'cli', 'main.js');
if (fs.existsSync(compiled)) {
  require(compiled).main(process.argv).catch((err) => {
    process.exitCode = 1;
    console.error(err && err.stack ? err.stack : err);
  });
} else {
  require('tsx/cjs');
  require(path.join(__dirname, '..', 'cli', 'main.ts')).main(process.argv).catch((err) => {
    process.exitCode = 1;
    console.error(err && err.stack ? err.stack : err);
  });
}
