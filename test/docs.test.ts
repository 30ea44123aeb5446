// The docs tell a new user commands that work: `meltemi` is run as `npx meltemi` (it is not on
// the PATH after the README's steps), that form works from inside the clone, and the README's
// "from another terminal" commands come with the example they belong to, before the test suite.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './helpers/paths';

const DOCS = [
  'README.md', 'sdk/README.md',
  ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`),
  ...readdirSync(join(ROOT, 'examples'), { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => `examples/${d.name}/README.md`)
    .filter((f) => { try { readFileSync(join(ROOT, f)); return true; } catch { return false; } }),
];

/** Lines of the fenced shell blocks of a markdown file. */
function shellLines(text: string): string[] {
  return [...text.matchAll(/```(?:sh|bash)\n([\s\S]*?)```/g)].flatMap((m) => m[1].split('\n'));
}

describe('docs: commands a new user can run', () => {
  for (const doc of DOCS) {
    it(`${doc}: shell commands run meltemi as npx meltemi`, () => {
      const bare = shellLines(readFileSync(join(ROOT, doc), 'utf8')).filter((l) => /^\s*meltemi\s/.test(l));
      assert.deepEqual(bare, []);
    });
  }

  it('npx meltemi works from a folder inside the clone', async () => {
    const r = await new Promise<{ code: number; out: string }>((resolve) => {
      execFile('npx', ['--no-install', 'meltemi', '--help'], { cwd: join(ROOT, 'examples') }, (err, stdout, stderr) => {
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, out: stdout + stderr });
      });
    });
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /meltemi new codec\|filter NAME/);
  });

  it('README: the example\'s "another terminal" commands come right after it, before the test suite', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const example = readme.indexOf('bash examples/redis-prefix-routing/run.sh');
    const other = readme.indexOf('from another terminal');
    const suite = readme.indexOf('./scripts/test.sh');
    assert.ok(example >= 0 && other > example && suite > other, `${example} < ${other} < ${suite}`);
  });

  for (const [version, code] of [['18.19.0', 1], ['20.18.3', 1], ['20.19.0', 0], ['22.1.0', 0]] as const) {
    it(`Node ${version}: the CLI ${code ? 'refuses to start and says how to get a supported Node' : 'starts'}`, async () => {
      const fake = `Object.defineProperty(process.versions, 'node', { value: '${version}' }); process.argv = [process.argv[0], 'meltemi', '--help']; require(${JSON.stringify(join(ROOT, 'bin', 'meltemi.js'))});`;
      const r = await new Promise<{ code: number; out: string }>((resolve) => {
        execFile(process.execPath, ['-e', fake], (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, out: stdout + stderr }));
      });
      assert.equal(r.code, code, r.out);
      if (code) assert.match(r.out, new RegExp(`needs Node\\.js >= 20\\.19\\.0; this is ${version.replace(/\./g, '\\.')}[\\s\\S]*nodesource[\\s\\S]*nvm install 20`));
    });
  }
});
