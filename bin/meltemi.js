#!/usr/bin/env node
'use strict';
// The compiled CLI lives in build/; `npm run build` produces it.
require('../scripts/check-node.cjs');
var fs = require('fs');
var path = require('path');
// stat, not existsSync: access(2) checks with the real UID without capabilities, so a proxy run
// as its own UID with CAP_DAC_READ_SEARCH (a tree in a 0700 directory) would look unbuilt.
function built(file) {
  try { return fs.statSync(file).isFile(); } catch (err) { return false; }
}
if (!built(path.join(__dirname, '../build/runtime/cli/main.js'))) {
  console.error('meltemi is not built yet: run `npm ci && npm run build` in ' + path.resolve(__dirname, '..'));
  process.exit(1);
}
require('../build/runtime/cli/main.js').main(process.argv.slice(2)).then(
  (code) => { if (typeof code === 'number') process.exitCode = code; },
  (err) => { console.error(err && err.stack ? err.stack : String(err)); process.exitCode = 1; },
);
