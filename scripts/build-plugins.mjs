#!/usr/bin/env node
// Compiles every first-party plugin (plugins/<name>/index.ts), every example codec
// (examples/<name>/codec/index.ts) and every test fixture plugin (test/fixtures/plugins/<name>/
// index.ts) with the root asconfig.json into build/plugins/, build/example-plugins/ and
// build/test-plugins/.
// Usage: node scripts/build-plugins.mjs [--target debug|release] [name…]
import asc from 'assemblyscript/asc';
import { readdirSync, existsSync, mkdirSync, symlinkSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const targetAt = args.indexOf('--target');
const target = targetAt >= 0 ? args.splice(targetAt, 2)[1] : 'release';
const only = new Set(args);

const sources = [
  ['plugins', join(root, 'build', 'plugins'), 'index.ts'],
  ['examples', join(root, 'build', 'example-plugins'), join('codec', 'index.ts')],
  [join('test', 'fixtures', 'plugins'), join(root, 'build', 'test-plugins'), 'index.ts'],
];

// Example codecs import the SDK as an author's project does ("meltemi/sdk/assembly"): asc finds
// packages on --path, where "meltemi/sdk" is this repository's sdk/ (only that: a link to the
// whole repository would put a loop under build/).
const packages = join(root, 'build', 'asc-packages');
mkdirSync(join(packages, 'meltemi'), { recursive: true });
if (!existsSync(join(packages, 'meltemi', 'sdk'))) symlinkSync(join(root, 'sdk'), join(packages, 'meltemi', 'sdk'), 'dir');

let failed = 0;
for (const [dir, outDir, entryFile] of sources) {
  const abs = join(root, dir);
  if (!existsSync(abs)) continue;
  for (const name of readdirSync(abs).sort()) {
    const entry = join(dir, name, entryFile);
    if (!existsSync(join(root, entry)) || (only.size > 0 && !only.has(name))) continue;
    mkdirSync(outDir, { recursive: true });
    const outFile = join(outDir, `${name}.wasm`);
    const { error, stderr } = await asc.main(
      [entry, '--config', 'asconfig.json', '--target', target, '--outFile', outFile, '--path', packages],
      { stdout: process.stdout, stderr: process.stderr, baseDir: root },
    );
    if (error) {
      failed++;
      console.error(`plugin ${name}: ${error.message}`);
    } else {
      console.log(`built ${outFile.slice(root.length + 1)}`);
    }
    void stderr;
  }
}
process.exit(failed ? 1 : 0);
