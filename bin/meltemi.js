#!/usr/bin/env node
'use strict';
// The compiled CLI lives in build/; `npm run build` produces it.
require('../build/runtime/cli.js').main(process.argv.slice(2)).then(
  (code) => { if (typeof code === 'number') process.exitCode = code; },
  (err) => { console.error(err && err.stack ? err.stack : String(err)); process.exitCode = 1; },
);
