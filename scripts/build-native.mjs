#!/usr/bin/env node
// Builds the original-destination addon (runtime/native/original-dst.c) into
// build/native/original-dst.node with the system C compiler and the running Node's headers.
// A plain `cc` call rather than node-gyp: one C file, no Python, no header download; Node's
// headers come with Debian's and NodeSource's nodejs and with nvm (<prefix>/include/node).
// Usage: node scripts/build-native.mjs [--optional]   (--optional: warn instead of failing)
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const optional = process.argv.includes('--optional');
const source = join(root, 'runtime', 'native', 'original-dst.c');
const out = join(root, 'build', 'native', 'original-dst.node');

const candidates = [
  process.env.npm_config_nodedir && join(process.env.npm_config_nodedir, 'include', 'node'),
  join(dirname(process.execPath), '..', 'include', 'node'),
  '/usr/include/node',
  '/usr/local/include/node',
].filter(Boolean);
const include = candidates.find((dir) => existsSync(join(dir, 'node_api.h')));

function fail(message) {
  process.stderr.write(`build-native: ${message}\n`);
  process.exit(optional ? 0 : 1);
}

if (process.platform !== 'linux') fail('the original-destination addon is Linux only (SO_ORIGINAL_DST); transparent capture is not available');
if (!include) fail(`Node's headers (node_api.h) not found in ${candidates.join(', ')}; install your Node's headers (the nodejs package has them)`);
mkdirSync(dirname(out), { recursive: true });
const cc = process.env.CC || 'cc';
try {
  execFileSync(cc, ['-O2', '-Wall', '-Werror', '-fPIC', '-shared', `-I${include}`, '-DNAPI_VERSION=8', '-o', out, source], { stdio: 'inherit' });
} catch (err) {
  fail(`${cc} failed (${err.message}); install a C compiler (Debian: gcc or build-essential)`);
}
